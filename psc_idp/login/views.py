"""Pages of the login flow: the login page, the card origin's entry point and the
hand-off back to the IdP origin, where the authorization request resumes."""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, url_for

from ..clients import cache as clients
from ..extensions import db
from ..oidc.authorize import resume
from ..settings import current as settings
from . import card, flow
from .outcome import Failure

bp = Blueprint("login", __name__)
card_bp = Blueprint("card", __name__)

EXPIRED = Failure("login_expired", "Cette demande de connexion a expiré ou n'est plus valide. "
                  "Retournez à l'application pour recommencer.",
                  "This login request has expired or is no longer valid. "
                  "Go back to the application to start again.")


@bp.get("/login")
def page():
    tx = flow.pending(request.args.get("tx"))
    if tx is None:
        return render_template("failure.html", failure=EXPIRED), 400
    client = clients.find(tx.client_id) if tx.client_id else None  # for its name
    return render_template("login.html", card_url=card_url(tx), client=client, tx=tx,
                           id_nat=request.args.get("id_nat", "")[:40],
                           error=request.args.get("error"))


def card_url(tx) -> str:
    query = urlencode({"tx": tx.id, "k": flow.card_key(tx)})
    return f"{settings().card_login_url}/card/login?{query}"


@bp.get("/login/complete")
def complete():
    tx = flow.pending(request.args.get("tx"))
    subject = flow.complete(tx, request.args.get("h", "")) if tx else None
    if subject is None:
        return render_template("failure.html", failure=EXPIRED), 400
    page = flow.account_page(tx)
    if page is not None:
        db.session.commit()
        return redirect(url_for(page))
    response = resume(tx, subject)
    db.session.commit()  # the SSO session, if resuming did not already commit it with a code
    return response


ALREADY = Failure("already_authenticated", "Cette demande de connexion a déjà été validée. "
                  "Retournez à l'application pour recommencer.",
                  "This login request was already completed. Go back to the application "
                  "to start again.")


@card_bp.get("/card/login")
def card_login():
    """The card origin: the transaction is the one whose login page gave this link (its
    ``k``), still waiting for its first authentication."""
    tx = flow.pending(request.args.get("tx"), bound=False)
    key = request.args.get("k", "")
    if tx is None or not hmac.compare_digest(key.encode(), flow.card_key(tx).encode()):
        return render_template("failure.html", failure=EXPIRED), 400
    if tx.authenticated_at is not None:
        return render_template("failure.html", failure=ALREADY), 400
    outcome = card.authenticate(request)
    if isinstance(outcome, Failure):
        db.session.commit()
        return render_template("failure.html", failure=outcome, retry=True), 403
    tx_id = tx.id  # the commit below expires the row: no reload for the redirect
    handoff = flow.authenticated(tx, outcome)
    if handoff is None:
        return render_template("failure.html", failure=ALREADY), 400
    query = urlencode({"tx": tx_id, "h": handoff})
    return redirect(f"{settings().issuer}/login/complete?{query}")
