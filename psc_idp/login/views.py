"""Pages of the login flow: the login page, the card origin's entry point and the
hand-off back to the IdP origin, where the authorization request resumes."""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from .. import audit, errors, i18n
from ..clients import cache as clients
from ..extensions import db
from ..oidc.authorize import abandon, resume
from ..pages import on_idp_origin
from ..settings import current as settings
from . import card, flow
from .outcome import Failure

bp = Blueprint("login", __name__)
card_bp = Blueprint("card", __name__)

EXPIRED = Failure("login_expired")
ALREADY = Failure("already_authenticated")

#: why the idNat typed on the login page was refused (``?error=``), closed set: the
#: shape problems of ``directory.identifiers.id_nat_problem`` (``%(digits)s``: how many
#: characters the professional typed, ``?id_nat=``)
ID_NAT_ERRORS = {
    "id_nat": _l("This identifier is not valid."),
    "empty": _l("Type your national identifier (idNat)."),
    "not_digits": _l("An idNat has digits only: 8 followed by your 11-digit RPPS number, or "
                     "0 followed by your 9-digit ADELI number."),
    "rpps_length": _l("This identifier has %(digits)s digits; an idNat from the RPPS has 12: "
                      "8 followed by your 11-digit RPPS number."),
    "adeli_length": _l("This identifier has %(digits)s characters; an idNat from ADELI has "
                       "10: 0 followed by your 9-digit ADELI number."),
    "prefix": _l("An idNat starts with 8 (RPPS) or 0 (ADELI): check the first digit."),
    "check_digit": _l("The check digit does not match: check for a typo."),
    "malformed": _l("This staff identifier is not well formed: check it on your CPS card."),
}
#: what the login page tells after an action of the professional (``?notice=``), closed set
NOTICES = {
    "ecps_cancelled": _l("The e-CPS request was cancelled: your phone no longer shows it."),
}


def failure_page(failure: Failure, status: int, tx=None):
    """The page of a failed login, with its ways out: back to the application (which hears
    an OAuth error with its ``state``) and, when trying again may work, the login page."""
    back = retry = None
    if tx is not None and tx.client_id and not flow.account_page(tx):
        back = on_idp_origin(url_for("login.abandon_login", tx=tx.id, reason=failure.reason))
        retry = on_idp_origin(url_for("login.page", tx=tx.id))
    return errors.page(failure.reason, status, back_url=back, retry_url=retry)


@bp.get("/login")
def page():
    tx = flow.pending(request.args.get("tx"))
    if tx is None:
        return failure_page(EXPIRED, 400)
    i18n.use_ui_locales(tx.params.get("ui_locales"))
    client = clients.find(tx.client_id) if tx.client_id else None  # for its name
    id_nat = request.args.get("id_nat", "")[:40]
    error = ID_NAT_ERRORS.get(request.args.get("error", ""))
    return render_template("login.html", card_url=card_url(tx), client=client, tx=tx,
                           id_nat=id_nat, error=error and str(error) % {"digits": len(id_nat)},
                           notice=NOTICES.get(request.args.get("notice", "")))


@bp.get("/login/abandon")
def abandon_login():
    """"Back to the application" on a failure page: the login ends and the application
    hears why (``access_denied`` or ``temporarily_unavailable``, with its ``state``)."""
    tx = flow.pending(request.args.get("tx"))
    if tx is None or not tx.client_id or flow.account_page(tx):
        return failure_page(EXPIRED, 400)
    reason = request.args.get("reason", "")
    explained = errors.REASONS.get(reason)
    if explained is None:
        reason, explained = "cancelled", errors.Reason("")
    if not flow.finish(tx):
        return failure_page(EXPIRED, 400)
    audit.record("login.abandoned", client_id=tx.client_id, reason=reason)
    response = abandon(tx, explained.oauth_error,
                       f"the professional did not sign in ({reason})")
    db.session.commit()
    return response


def card_url(tx) -> str:
    query = urlencode({"tx": tx.id, "k": flow.card_key(tx)})
    return f"{settings().card_login_url}/card/login?{query}"


@bp.get("/login/complete")
def complete():
    tx = flow.pending(request.args.get("tx"))
    subject = flow.complete(tx, request.args.get("h", "")) if tx else None
    if subject is None:
        return failure_page(EXPIRED, 400)
    page = flow.account_page(tx)
    if page is not None:
        db.session.commit()
        return redirect(url_for(page))
    response = resume(tx, subject)
    db.session.commit()  # the SSO session, if resuming did not already commit it with a code
    return response


@card_bp.get("/card/login")
def card_login():
    """The card origin: the transaction is the one whose login page gave this link (its
    ``k``), still waiting for its first authentication."""
    tx = flow.pending(request.args.get("tx"), bound=False)
    key = request.args.get("k", "")
    if tx is None or not hmac.compare_digest(key.encode(), flow.card_key(tx).encode()):
        return failure_page(EXPIRED, 400)
    i18n.use_ui_locales(tx.params.get("ui_locales"))
    if tx.authenticated_at is not None:
        return failure_page(ALREADY, 400)
    outcome = card.authenticate(request)
    if isinstance(outcome, Failure):
        db.session.commit()
        return failure_page(outcome, 403, tx)
    tx_id = tx.id  # the commit below expires the row: no reload for the redirect
    handoff = flow.authenticated(tx, outcome)
    if handoff is None:
        return failure_page(ALREADY, 400)
    query = urlencode({"tx": tx_id, "h": handoff})
    return redirect(f"{settings().issuer}/login/complete?{query}")
