"""Pages of the login flow: the login page, the card origin's entry point and the
hand-off back to the IdP origin, where the authorization request resumes."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from ..extensions import db
from ..oidc.authorize import resume
from ..oidc.models import Client
from . import card, flow
from .outcome import Failure

bp = Blueprint("login", __name__)
card_bp = Blueprint("card", __name__)

EXPIRED = Failure("login_expired", "Cette demande de connexion a expiré ou n'est plus valide. "
                  "Retournez à l'application pour recommencer.",
                  "This login request has expired or is no longer valid. "
                  "Go back to the application to start again.")


def settings():
    return current_app.extensions["psc_idp"].settings


@bp.get("/login")
def page():
    tx = flow.pending(request.args.get("tx"))
    if tx is None:
        return render_template("failure.html", failure=EXPIRED), 400
    client = db.session.get(Client, tx.client_id) if tx.client_id else None
    return render_template("login.html", card_url=card_url(tx), client=client, tx=tx,
                           id_nat=request.args.get("id_nat", "")[:40],
                           error=request.args.get("error"))


def card_url(tx) -> str:
    return f"{settings()['card_login_url']}/card/login?{urlencode({'tx': tx.id})}"


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
    return resume(tx, subject)


@card_bp.get("/card/login")
def card_login():
    tx = flow.pending(request.args.get("tx"), bound=False)
    if tx is None:
        return render_template("failure.html", failure=EXPIRED), 400
    outcome = card.authenticate(request)
    if isinstance(outcome, Failure):
        db.session.commit()
        return render_template("failure.html", failure=outcome, retry=True), 403
    handoff = flow.authenticated(tx, outcome)
    query = urlencode({"tx": tx.id, "h": handoff})
    return redirect(f"{settings()['issuer']}/login/complete?{query}")
