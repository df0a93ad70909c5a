"""The protocol owns every interaction with the professional (node-oidc-provider's idea):
a pending authorization request becomes a login transaction bound to the browser; a login
method — the card, the e-CPS phone, the CIBA channels — ends with one call handing back
``{id_nat, method, acr, amr, auth_time}`` (``login.outcome.Success``), and the protocol
goes on: it opens the SSO session and replays the stored request to issue the code, or
approves the CIBA request. Login methods reach it through ``idp().interactions`` and never
import protocol code. All state is in the database or the signed cookie."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from flask import redirect, session, url_for
from sqlalchemy import update
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from .. import audit, ops
from ..clients import cache as clients
from ..clock import keyed_digest
from ..extensions import db
from ..login.outcome import Failure, Success
from ..settings import current as settings
from . import authorize, transactions
from .consts import AUTH_MODE, PATHS
from .models import LoginSession, LoginTransaction, digest, now
from .subject import Subject

MAX_PENDING = 5
#: the interaction id of a CIBA request (``ciba.models.CibaRequest.id`` after it)
CIBA_PREFIX = "ciba:"

#: the authorization request parameters psc-idp understands: only these are kept while the
#: professional logs in (each at most authorize.MAX_PARAMETER characters)
REQUEST_PARAMETERS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                      "prompt", "max_age", "acr_values", "login_hint", "ui_locales",
                      "response_mode", "code_challenge", "code_challenge_method",
                      "dpop_jkt")

#: psc-idp's own pages that a card login may lead back to (e-CPS activation, devices)
ACCOUNT_PAGES = {"ecps.activate", "ecps.devices", "console.home", "console.client_list",
                 "console.practitioners", "console.audit_log"}


# --- starting --------------------------------------------------------------------------------

def start(oauth_request) -> LoginTransaction:
    data = oauth_request.payload.data
    params = {key: data.get(key) for key in REQUEST_PARAMETERS if data.get(key) is not None}
    return _start(oauth_request.client.client_id, params)


def start_account(page: str) -> LoginTransaction:
    """A card login for one of psc-idp's own pages, outside any authorization request."""
    assert page in ACCOUNT_PAGES
    return _start("", {"_account_page": page})


def account_page(tx: LoginTransaction) -> str | None:
    page = (tx.params or {}).get("_account_page")
    return page if page in ACCOUNT_PAGES else None


def _start(client_id: str, params: dict) -> LoginTransaction:
    tx = LoginTransaction(
        id=secrets.token_urlsafe(24), client_id=client_id, params=params,
        expires_at=now() + settings().login_lifetime,
    )
    db.session.add(tx)
    db.session.flush()
    db.session.expunge(tx)  # stays readable after the commit: no reload to build the redirect
    db.session.commit()
    session["tx"] = ([tx.id] + session.get("tx", []))[:MAX_PENDING]
    return tx


# --- what login methods see ------------------------------------------------------------------

def pending(tx_id: str | None, *, bound: bool = True) -> LoginTransaction | None:
    """The live transaction ``tx_id``; with ``bound``, only if this browser started it."""
    if not tx_id or len(tx_id) > 64 or (bound and tx_id not in session.get("tx", [])):
        return None
    tx = db.session.get(LoginTransaction, tx_id)
    if tx is None or tx.expires_at < now() or tx.completed_at is not None:
        return None
    return tx


def client(tx: LoginTransaction):
    """The application the professional logs in to (None for psc-idp's own pages)."""
    return clients.find(tx.client_id) if tx.client_id else None


def card_key(tx: LoginTransaction) -> str:
    """The capability that lets the card origin authenticate ``tx``: only the login page of
    the browser that started the transaction shows it (the card origin cannot read that
    browser's cookie). Knowing a transaction id (a leaked login page URL) is not enough to
    put another card on it."""
    return keyed_digest(b"card-login:" + tx.id.encode())


def card_url(tx: LoginTransaction) -> str:
    query = urlencode({"tx": tx.id, "k": card_key(tx)})
    return f"{settings().card_login_url}/card/login?{query}"


def ways_out(tx: LoginTransaction | None, reason: str) -> dict:
    """The links of a failure page: back to the application (which hears an OAuth error
    with its ``state``) and the login page again; none outside an authorization request."""
    from ..pages import on_idp_origin

    if tx is None or not tx.client_id or account_page(tx):
        return {}
    return {"back_url": on_idp_origin(url_for("interaction.abandon", tx=tx.id, reason=reason)),
            "retry_url": on_idp_origin(url_for("login.page", tx=tx.id))}


# --- how a login ends ------------------------------------------------------------------------

def finished(tx: LoginTransaction, outcome: Success, *, across_origins: bool = False):
    """A login method succeeded for ``tx``: the response that goes on with the request.
    ``across_origins``: the method ran on another origin (the card's), which cannot read
    the browser's IdP cookie: a one-time hand-off takes the browser back to
    ``/login/complete``. None when ``tx`` was already authenticated (the first
    authentication stands)."""
    tx_id = tx.id  # the commit below expires the row: no reload for the redirect
    handoff = authenticated(tx, outcome)
    if handoff is None:
        return None
    if across_origins:
        return redirect(f"{settings().issuer}/login/complete?"
                        f"{urlencode({'tx': tx_id, 'h': handoff})}")
    return complete(tx, handoff)


def authenticated(tx: LoginTransaction, outcome: Success) -> str | None:
    """Record a method's success on the transaction; returns the one-time hand-off, or None
    when the transaction was already authenticated (the first authentication stands: a
    second card or approval must not replace the identity the browser will receive)."""
    handoff = secrets.token_urlsafe(32)
    claimed = db.session.execute(
        update(LoginTransaction)
        .where(LoginTransaction.id == tx.id, LoginTransaction.authenticated_at.is_(None))
        .values(id_nat=outcome.id_nat, method=outcome.method, method_detail=outcome.detail,
                acr=outcome.acr, amr=outcome.amr, authenticated_at=outcome.auth_time,
                handoff_hash=digest(handoff))
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        return None
    audit.record("login", id_nat=outcome.id_nat, client_id=tx.client_id, method=outcome.method)
    ops.login(outcome.method, "success")
    transactions.commit()  # the audit record travels with the COMMIT
    return handoff


def complete(tx: LoginTransaction | None, handoff: str | None):
    """Consume the hand-off in the browser that started the login, open the SSO session
    (once: two concurrent completions never open two sessions) and go on: psc-idp's own
    page, or the authorization response. The session is committed with what the login is
    for (the authorization code): a login is recorded whole or not at all. None when there
    is nothing to complete."""
    if tx is None or not handoff or not tx.handoff_hash or \
            not secrets.compare_digest(tx.handoff_hash, digest(handoff)):
        return None
    if not finish(tx):
        return None
    subject = open_session(tx)
    page = account_page(tx)
    response = redirect(url_for(page)) if page else authorize.resume(replayed_request(tx),
                                                                      subject)
    db.session.commit()  # the SSO session, if resuming did not already commit it with a code
    return response


def finish(tx: LoginTransaction) -> bool:
    """End ``tx`` (once: of two concurrent ends, one gets False) and forget it in this
    browser; ``complete`` then opens the session, or the professional went back to the
    application without logging in (``abandon``)."""
    ended = db.session.execute(
        update(LoginTransaction)
        .where(LoginTransaction.id == tx.id, LoginTransaction.completed_at.is_(None))
        .values(completed_at=now()).execution_options(synchronize_session=False))
    if ended.rowcount != 1:
        db.session.rollback()
        return False
    session["tx"] = [t for t in session.get("tx", []) if t != tx.id]
    return True


def abandon(tx: LoginTransaction, reason: str, oauth_error: str):
    """The professional goes back to the application without signing in: the login ends
    and the client hears ``oauth_error`` with its ``state``; None when it already ended."""
    if not finish(tx):
        return None
    audit.record("login.abandoned", client_id=tx.client_id, reason=reason)
    response = authorize.abandon(replayed_request(tx), oauth_error,
                                 f"the professional did not sign in ({reason})")
    db.session.commit()
    return response


def decided(interaction_id: str, outcome: Success | Failure, *, id_nat: str,
            method: str) -> None:
    """A decoupled channel's answer (the e-CPS phone, the card tool), in the caller's
    transaction: a CIBA request is approved or denied; a browser login goes on when its
    page asks (``finished``), so nothing happens here for it."""
    if not interaction_id.startswith(CIBA_PREFIX):
        return
    from ..ciba import service as ciba

    ciba.settle(interaction_id.removeprefix(CIBA_PREFIX), outcome, id_nat=id_nat,
                method=method)


# --- the SSO session -------------------------------------------------------------------------

def open_session(tx: LoginTransaction) -> Subject:
    row = LoginSession(
        sid=secrets.token_urlsafe(24), id_nat=tx.id_nat, auth_time=tx.authenticated_at,
        acr=tx.acr, amr=list(tx.amr), auth_mode=AUTH_MODE[tx.method],
        method_detail=tx.method_detail, expires_at=now() + settings().session_lifetime,
    )
    db.session.add(row)  # committed by the caller, with what the login is for
    session["sid"] = row.sid
    session.permanent = True
    return Subject.of(row)


def current_subject(max_age: int | None = None) -> Subject | None:
    """The SSO session of this browser, if live and young enough for ``max_age``."""
    sid = session.get("sid")
    row = db.session.get(LoginSession, sid) if isinstance(sid, str) else None
    if row is None or row.ended_at is not None or row.expires_at < now():
        return None
    if max_age is not None and (max_age == 0 or now() - row.auth_time > max_age):
        return None
    return Subject.of(row)


def replayed_request(tx: LoginTransaction) -> Request:
    """The stored authorization request, as a request object Authlib can validate again."""
    params = {k: v for k, v in tx.params.items() if v is not None}
    path = settings().issuer + PATHS["authorization_endpoint"]
    builder = EnvironBuilder(method="GET", base_url=path, query_string=urlencode(params))
    return Request(builder.get_environ())
