"""CIBA (OpenID Client-Initiated Backchannel Authentication Core 1.0, poll and ping modes)
at PSC's path (psc.md §7): the backchannel authentication endpoint (§7) and the CIBA grant
of the token endpoint (§10-§11). The request's life is ``ciba.service``; the channels that
decide it are the e-CPS phone (``MOBILE``) and the card tool (``CARD``, ``ciba.card``).

No enumeration (§7.1 leaves it to the OP): an unknown idNat, one without an e-CPS device,
or one the client's pushes are throttled for gets the same answer, timing and polls as a
real request — a decoy that nobody is asked about and that expires."""

from __future__ import annotations

import re
import secrets

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error, UnauthorizedClientError
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oidc.core.grants.util import is_openid_scope
from flask import jsonify
from flask import request as flask_request
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import or_, update

from .. import audit, ops
from ..ciba import service
from ..ciba.models import CibaRequest
from ..directory.identifiers import id_nat_problem
from ..directory.lookup import find_active
from ..ecps import limits
from ..ecps import service as ecps
from ..extensions import db, idp
from ..settings import current as settings
from . import tokens, transactions
from .consts import AUTH_MODE, CIBA_GRANT_TYPE, TOKEN_AUTH_METHODS
from .interaction import CIBA_PREFIX
from .models import LoginSession, now
from .subject import Subject, subject_identifier

#: CIBA requires an authenticated client (§7.1): no public clients
AUTH_METHODS = list(TOKEN_AUTH_METHODS)
#: what the phone shows among three codes: PSC's apps send two random digits (psc.md §7)
MOBILE_BINDING = re.compile(r"^[0-9]{2}$")
#: what the card tool shows: short, printable, no markup
CARD_BINDING = re.compile(r"^[0-9A-Za-z .,:!?'()/-]{1,20}$")
MAX_NOTIFICATION_TOKEN = 1024


class CibaError(OAuth2Error):
    """An error of the backchannel authentication endpoint (CIBA Core §13)."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description, status_code=status)
        self.error = error


def authentication_request():
    """§7: authenticate the client, validate the request, start it on its channel and
    answer ``{auth_req_id, expires_in, interval}``; every refusal is JSON per §13."""
    try:
        client = idp().server.authenticate_client(
            idp().server.create_oauth2_request(None), AUTH_METHODS, "backchannel")
        answer = _start(client, flask_request.form)
    except OAuth2Error as error:
        status, body, headers = error()
        response = jsonify(dict(body))
        response.status_code = status
        response.headers.update(dict(headers))
        response.headers["Cache-Control"] = "no-store"
        db.session.rollback()
        return response
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


def _start(client, form) -> dict:
    if client.backchannel_token_delivery_mode is None:
        raise UnauthorizedClientError("this client is not registered for CIBA "
                                      "(backchannel_token_delivery_mode)")
    for name, values in form.lists():
        if len(values) > 1:
            raise CibaError("invalid_request", f"parameter '{name[:40]}' is repeated")
    scope = client.get_allowed_scope(form.get("scope", ""))
    if not scope:
        raise CibaError("invalid_scope", "scope: ask for 'openid' and the scopes this "
                                         "client is registered for")
    id_nat = _hinted(client, form)
    channel = form.get("channel") or "MOBILE"
    if channel not in service.CHANNELS:
        raise CibaError("invalid_request", "channel: MOBILE (the e-CPS phone) or CARD")
    binding = _binding_message(form.get("binding_message"), channel)
    lifetime = _lifetime(form.get("requested_expiry"))
    delivery, token = _delivery(client, form.get("client_notification_token"))
    network = f"client:{client.client_id}"
    if not limits.may_request_login(id_nat, network):
        ops.ciba("rate_limited")
        raise CibaError("slow_down", "too many CIBA requests for this professional from "
                                     "this client: wait before asking again", 429)
    auth_req_id, row = service.new(
        client, id_nat, channel, scope, real=False, lifetime=lifetime,
        binding_message=binding, delivery=delivery, notification_token=token,
        network=network)
    if channel == "MOBILE":
        ecps.start_login(CIBA_PREFIX + row.id, client.client_id, id_nat, row.client_name,
                         network, code=binding, lifetime=lifetime,
                         before_commit=lambda asked: _on_phone(row, asked))
    else:
        row.real = find_active(id_nat) is not None and not limits.throttled(id_nat, network)
    audit.record("ciba.requested", "success" if row.real else "failure",
                 id_nat=id_nat, client_id=client.client_id, channel=channel,
                 delivery=delivery, **({} if row.real else {"reason": "not_available"}))
    transactions.commit()
    ops.ciba("requested" if row.real else "not_available")
    return {"auth_req_id": auth_req_id, "expires_in": lifetime, "interval": row.interval}


def _on_phone(row: CibaRequest, asked) -> None:
    """The e-CPS request the phone will show (a decoy when it will not)."""
    row.real, row.login_request_id = asked.real, asked.id


def _hinted(client, form) -> str:
    """§7.1: exactly one hint — ``login_hint`` (the idNat, as PSC) or ``id_token_hint`` (an
    ID token psc-idp issued to this client, expired or not)."""
    hints = [name for name in ("login_hint", "id_token_hint", "login_hint_token")
             if form.get(name)]
    if len(hints) != 1:
        raise CibaError("invalid_request", "send exactly one of login_hint (the idNat) "
                                           "and id_token_hint")
    if hints[0] == "login_hint_token":
        raise CibaError("invalid_request", "login_hint_token is not supported: send "
                                           "login_hint (the idNat)")
    if hints[0] == "id_token_hint":
        return _from_id_token(client, form["id_token_hint"])
    id_nat = form["login_hint"].strip()
    if len(id_nat) > 40 or id_nat_problem(id_nat):
        raise CibaError("invalid_request", "login_hint: an idNat (8 followed by the RPPS "
                                           "number, or 0 followed by the ADELI number)")
    return id_nat


def _from_id_token(client, hint: str) -> str:
    try:  # the ring's imported key set (as for access tokens), expiry not checked
        claims = jwt.decode(hint[:8000], idp().keys.key_set(),
                            algorithms=idp().keys.algorithms).claims
    except (JoseError, ValueError, TypeError):
        raise CibaError("invalid_request", "id_token_hint: not an ID token of this "
                                           "provider") from None
    sub, prefix = claims.get("sub"), subject_identifier("")
    if claims.get("iss") != settings().issuer or claims.get("aud") != client.client_id \
            or not isinstance(sub, str) or not sub.startswith(prefix):
        raise CibaError("invalid_request", "id_token_hint: not an ID token issued to "
                                           "this client")
    return sub.removeprefix(prefix)


def _binding_message(value: str | None, channel: str) -> str | None:
    """§7.1 ``binding_message``: on the phone, the code to pick among three (two digits,
    as PSC's apps send); in the card tool, a short printable text (optional)."""
    if channel == "MOBILE" and not (value and MOBILE_BINDING.match(value)):
        raise CibaError("invalid_binding_message", "binding_message: two digits, shown by "
                                                   "the application and picked on the phone")
    if value and not CARD_BINDING.match(value):
        raise CibaError("invalid_binding_message", "binding_message: at most 20 letters, "
                                                   "digits, spaces or punctuation")
    return value or None


def _lifetime(requested: str | None) -> int:
    lifetime = settings().ciba_request_lifetime
    if requested in (None, ""):
        return lifetime
    if not requested.isdigit() or len(requested) > 6 or int(requested) < 1:
        raise CibaError("invalid_request", "requested_expiry: a positive number of seconds")
    return min(lifetime, int(requested))


def _delivery(client, token: str | None) -> tuple[str, str | None]:
    """§7.1: ping-mode clients send the bearer their notification endpoint expects."""
    if client.backchannel_token_delivery_mode != "ping":
        return "poll", None
    if not token or len(token) > MAX_NOTIFICATION_TOKEN or not token.isprintable():
        raise CibaError("invalid_request", "client_notification_token: required in ping "
                                           f"mode, at most {MAX_NOTIFICATION_TOKEN} "
                                           "printable characters")
    return "ping", token


# --- the token endpoint ----------------------------------------------------------------------

class AuthorizationPendingError(OAuth2Error):
    error = "authorization_pending"


class SlowDownError(OAuth2Error):
    error = "slow_down"


class AccessDeniedError(OAuth2Error):
    error = "access_denied"


class ExpiredTokenError(OAuth2Error):
    error = "expired_token"


class CibaGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """§10-§11: the client polls with its ``auth_req_id`` no faster than ``interval``; an
    approved request issues tokens once, as the code flow does (``authMode`` MOBILE or
    CARD, a session of its own for ``sid``)."""

    GRANT_TYPE = CIBA_GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("this client is not registered for CIBA")
        row = service.find(self.request.payload.data.get("auth_req_id") or "")
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("unknown auth_req_id")
        self.request.client, self.ciba = client, row

    @hooked  # DPoP binding (oidc.dpop_binding) runs before, as for the other grants
    def create_token_response(self):
        row = _poll(self.ciba)  # raises while there is nothing to issue
        subject = _subject(row)
        token = self.generate_token(user=subject, scope=row.scope,
                                    include_refresh_token=True)
        if is_openid_scope(row.scope):
            token["id_token"] = tokens.id_token(self.request.client, subject, row.scope,
                                                access_token_value=token["access_token"])
        self.request.user = subject
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _poll(row: CibaRequest) -> CibaRequest:
    """§11: the poll is recorded (committed: the error answers roll back) and answered —
    ``slow_down`` within ``interval`` of the last one; then the request's state. An approved
    request is used by this poll only (conditional update, committed with the tokens)."""
    current = now()
    on_time = db.session.execute(
        update(CibaRequest).where(CibaRequest.id == row.id, or_(
            CibaRequest.last_polled_at.is_(None),
            CibaRequest.last_polled_at + CibaRequest.interval <= current))
        .values(last_polled_at=current).execution_options(synchronize_session=False))
    db.session.commit()
    if on_time.rowcount != 1:
        raise SlowDownError(f"poll at most every {row.interval} s")
    if row.status == service.USED:
        raise InvalidGrantError("this auth_req_id was already used")
    if row.status == service.DENIED:
        raise AccessDeniedError("the professional refused, or picked another code")
    if row.expires_at < current:
        raise ExpiredTokenError("the request expired before the professional approved it")
    if row.status != service.APPROVED:
        raise AuthorizationPendingError("the professional has not answered yet")
    used = db.session.execute(
        update(CibaRequest).where(CibaRequest.id == row.id,
                                  CibaRequest.status == service.APPROVED)
        .values(status=service.USED).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        raise InvalidGrantError("this auth_req_id was already used")
    return row


def _subject(row: CibaRequest) -> Subject:
    """The professional who approved, with a session of their own (``sid``: revoking or
    logging it out ends these tokens, as for a browser's)."""
    session = LoginSession(
        sid=secrets.token_urlsafe(24), id_nat=row.id_nat, auth_time=row.decided_at,
        acr=row.acr, amr=list(row.amr or []), auth_mode=AUTH_MODE[row.method],
        method_detail=row.method_detail, expires_at=now() + settings().session_lifetime)
    db.session.add(session)
    return Subject.of(session, grant_id=secrets.token_urlsafe(24))
