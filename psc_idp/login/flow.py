"""The login flow: a pending authorization request becomes a login transaction bound
to the browser; a method's success becomes an SSO session; the stored request is then
replayed to issue the code. All state is in the database or the signed cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from flask import current_app, session
from sqlalchemy import update
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from .. import audit, ops
from ..extensions import db
from ..oidc import transactions
from ..oidc.consts import AMR, AUTH_MODE, PATHS
from ..oidc.models import LoginSession, LoginTransaction, digest, now
from ..oidc.subject import Subject
from ..settings import current as settings
from .outcome import Success

MAX_PENDING = 5


#: the authorization request parameters psc-idp understands: only these are kept while the
#: professional logs in (each at most authorize.MAX_PARAMETER characters)
REQUEST_PARAMETERS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                      "prompt", "max_age", "acr_values", "login_hint", "ui_locales",
                      "response_mode", "code_challenge", "code_challenge_method")


def start(oauth_request) -> LoginTransaction:
    data = oauth_request.payload.data
    params = {key: data.get(key) for key in REQUEST_PARAMETERS if data.get(key) is not None}
    return _start(oauth_request.client.client_id, params)


#: psc-idp's own pages that a card login may lead back to (e-CPS activation, devices)
ACCOUNT_PAGES = {"ecps.activate", "ecps.devices", "console.home", "console.client_list",
                 "console.practitioners", "console.audit_log"}


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


def pending(tx_id: str | None, *, bound: bool = True) -> LoginTransaction | None:
    """The live transaction ``tx_id``; with ``bound``, only if this browser started it."""
    if not tx_id or len(tx_id) > 64 or (bound and tx_id not in session.get("tx", [])):
        return None
    tx = db.session.get(LoginTransaction, tx_id)
    if tx is None or tx.expires_at < now() or tx.completed_at is not None:
        return None
    return tx


def card_key(tx: LoginTransaction) -> str:
    """The capability that lets the card origin authenticate ``tx``: only the login page of
    the browser that started the transaction shows it (the card origin cannot read that
    browser's cookie). Knowing a transaction id (a leaked login page URL) is not enough to
    put another card on it."""
    mac = hmac.new(current_app.config["SECRET_KEY"].encode(), b"card-login:" + tx.id.encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def authenticated(tx: LoginTransaction, outcome: Success) -> str | None:
    """Record a method's success on the transaction; returns the one-time hand-off, or None
    when the transaction was already authenticated (the first authentication stands: a
    second card or approval must not replace the identity the browser will receive)."""
    handoff = secrets.token_urlsafe(32)
    claimed = db.session.execute(
        update(LoginTransaction)
        .where(LoginTransaction.id == tx.id, LoginTransaction.authenticated_at.is_(None))
        .values(id_nat=outcome.id_nat, method=outcome.method, method_detail=outcome.detail,
                authenticated_at=now(), handoff_hash=digest(handoff))
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        return None
    audit.record("login", id_nat=outcome.id_nat, client_id=tx.client_id, method=outcome.method)
    ops.login(outcome.method, "success")
    transactions.commit()  # the audit record travels with the COMMIT
    return handoff


def complete(tx: LoginTransaction, handoff: str | None) -> Subject | None:
    """Consume the hand-off in the browser that started the login: open the SSO session
    (once: two concurrent completions never open two sessions). Nothing is committed here:
    the caller commits the session with what it issues (the authorization code), so a
    login is recorded whole or not at all."""
    if not handoff or not tx.handoff_hash or \
            not secrets.compare_digest(tx.handoff_hash, digest(handoff)):
        return None
    if not finish(tx):
        return None
    return open_session(tx.id_nat, tx.method, tx.method_detail, tx.authenticated_at)


def finish(tx: LoginTransaction) -> bool:
    """End ``tx`` (once: of two concurrent ends, one gets False) and forget it in this
    browser; ``complete`` then opens the session, or the professional went back to the
    application without logging in."""
    ended = db.session.execute(
        update(LoginTransaction)
        .where(LoginTransaction.id == tx.id, LoginTransaction.completed_at.is_(None))
        .values(completed_at=now()).execution_options(synchronize_session=False))
    if ended.rowcount != 1:
        db.session.rollback()
        return False
    session["tx"] = [t for t in session.get("tx", []) if t != tx.id]
    return True


def open_session(id_nat: str, method: str, detail: str | None, auth_time: int) -> Subject:
    row = LoginSession(
        sid=secrets.token_urlsafe(24), id_nat=id_nat, auth_time=auth_time,
        acr=settings().acr.get(method, "eidas1"), amr=AMR[method],
        auth_mode=AUTH_MODE[method], method_detail=detail,
        expires_at=now() + settings().session_lifetime,
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
