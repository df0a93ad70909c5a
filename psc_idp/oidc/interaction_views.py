"""The interaction's own routes on the IdP origin: the hand-off back from the card origin
(``/login/complete``) and "back to the application" from a failure page
(``/login/abandon``)."""

from __future__ import annotations

from flask import Blueprint, request

from .. import errors
from . import interaction

bp = Blueprint("interaction", __name__)

EXPIRED = errors.Failure("login_expired")


@bp.get("/login/complete")
def complete():
    tx = interaction.pending(request.args.get("tx"))
    response = interaction.complete(tx, request.args.get("h", ""))
    return response if response is not None else errors.failure_page(EXPIRED, 400)


@bp.get("/login/abandon")
def abandon():
    """"Back to the application" on a failure page: the login ends and the application
    hears why (``access_denied`` or ``temporarily_unavailable``, with its ``state``)."""
    tx = interaction.pending(request.args.get("tx"))
    if tx is None or not tx.client_id or interaction.account_page(tx):
        return errors.failure_page(EXPIRED, 400)
    reason = request.args.get("reason", "")
    explained = errors.REASONS.get(reason)
    if explained is None:
        reason, explained = "cancelled", errors.Reason("")
    response = interaction.abandon(tx, reason, explained.oauth_error)
    return response if response is not None else errors.failure_page(EXPIRED, 400)
