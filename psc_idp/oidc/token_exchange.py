"""Token exchange (RFC 8693) as the Espace de Confiance uses it (psc.md §10): a relying
party authenticated over mTLS (RFC 8705: ``tls_client_auth`` with an IGC-Santé organisation
certificate, or ``self_signed_tls_client_auth``) presents a professional's psc-idp access
token (``subject_token``) and gets an access token for one health-data API (``audience`` or
``resource``) that ops allowed it (``token_exchange_audiences``), bound to its certificate
(``cnf.x5t#S256``), carrying the professional's identity (``SubjectNameID``,
``preferred_username``, names) and, when the caller is not the application the subject
token was issued to, ``act`` (RFC 8693 §4.1: the caller acts for the professional).

PSC's EDC quirk: its ``cnf.x5t#S256`` is the base64 of the hexadecimal SHA-256, not the
base64url of the digest (RFC 8705 §3.1). A client with the ``edc_x5t_hex`` compat flag
gets PSC's value in its exchanged tokens; the standard one otherwise."""

from __future__ import annotations

import base64
import hashlib
import secrets

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.hooks import hooked
from cryptography.hazmat.primitives import serialization

from .. import audit, ops
from ..extensions import db, idp
from ..keys import jws
from . import issued, mtls
from .claims import named_identity, names_of
from .consts import ACCESS_TOKEN_TYP, COMPAT_EDC_X5T_HEX, TOKEN_EXCHANGE_GRANT_TYPE
from .models import Token, now
from .subject import Subject

ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
#: RFC 8693 §2.1: the caller authenticates over mTLS (the EDC's organisation certificate)
AUTH_METHODS = ["tls_client_auth", "self_signed_tls_client_auth"]


class InvalidTargetError(OAuth2Error):
    """RFC 8693 §2.2.2: the audience or resource is not one this client may ask for."""

    error = "invalid_target"


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    GRANT_TYPE = TOKEN_EXCHANGE_GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.token_exchange_audiences:
            raise UnauthorizedClientError("this client may not exchange tokens: ops allow "
                                          "it audiences (clients update --exchange-audience)")
        data = self.request.payload.data
        if data.get("subject_token_type") != ACCESS_TOKEN:
            raise InvalidRequestError(f"subject_token_type must be {ACCESS_TOKEN}")
        if data.get("requested_token_type") not in (None, "", ACCESS_TOKEN):
            raise InvalidRequestError(f"requested_token_type: only {ACCESS_TOKEN}")
        if data.get("actor_token"):
            raise InvalidRequestError("actor_token is not supported: the authenticated "
                                      "caller is the actor (act)")
        audience = _target(data)
        if audience not in client.token_exchange_audiences:
            raise InvalidTargetError(f"this client may not ask for tokens for {audience[:200]}")
        subject = issued.access(data.get("subject_token") or "")
        if subject is None or subject.is_expired() or subject.is_revoked():
            raise InvalidGrantError("subject_token is not a live access token of this "
                                    "provider (expired, revoked, or its session ended)")
        self.request.client = client
        self.exchange = (subject, audience, _scope(data.get("scope"), subject.row.scope))

    @hooked
    def create_token_response(self):
        subject, audience, scope = self.exchange
        client, cert = self.request.client, mtls.certificate()
        x5t = mtls.thumbprint(cert)
        row, current = subject.row, now()
        lifetime, jti = idp().settings.access_token_lifetime, secrets.token_urlsafe(24)
        user = Subject.of(row, grant_id=secrets.token_urlsafe(24))
        claims = {
            "iss": idp().settings.issuer, "sub": user.get_user_id(), "aud": audience,
            "exp": current + lifetime, "iat": current, "jti": jti,
            "client_id": client.client_id, "scope": scope, "auth_time": row.auth_time,
            "acr": row.acr, "amr": list(row.amr), **named_identity(user, names_of(user)),
            "cnf": {"x5t#S256": _confirmation(client, cert, x5t)},
        }
        actor = _actor(client.client_id, row.client_id, subject.claims.get("act"))
        if actor:
            claims["act"] = actor
        token = jws.encode(claims, idp().keys.signer("RS256"), typ=ACCESS_TOKEN_TYP)
        db.session.add(Token(
            jti=jti, grant_id=user.grant_id, client_id=client.client_id, id_nat=row.id_nat,
            sid=row.sid, scope=scope, auth_time=row.auth_time, acr=row.acr, amr=row.amr,
            auth_mode=row.auth_mode, issued_at=current, access_expires_at=current + lifetime,
            x5t_s256=x5t))
        with db.session.no_autoflush:
            audit.record("token.exchanged", id_nat=row.id_nat, client_id=client.client_id,
                         audience=audience, subject_client=row.client_id)
        ops.token_issued(self.GRANT_TYPE)
        return 200, {"access_token": token, "issued_token_type": ACCESS_TOKEN,
                     "token_type": "Bearer", "expires_in": lifetime,
                     "scope": scope}, self.TOKEN_RESPONSE_HEADER


def _target(data) -> str:
    """§2.1: one target, named by ``audience`` or ``resource`` (both: the same)."""
    targets = {value for value in (data.get("audience"), data.get("resource")) if value}
    if len(targets) != 1:
        raise InvalidRequestError("name the API the token is for: one audience or resource")
    target = targets.pop()
    if len(target) > 400 or not target.isprintable():
        raise InvalidTargetError("audience: at most 400 printable characters")
    return target


def _scope(requested: str | None, granted: str) -> str:
    """§2.1: at most the subject token's scope (all of it by default)."""
    if not requested:
        return granted
    wanted, allowed = requested.split(), set(granted.split())
    if not set(wanted) <= allowed:
        raise InvalidScopeError("scope: at most the subject token's")
    return " ".join(dict.fromkeys(wanted))


def _actor(caller: str, subject_client: str, previous) -> dict | None:
    """§4.1: the caller, when it is not the application the professional signed in to;
    an earlier actor nested under it."""
    if caller == subject_client and not previous:
        return None
    actor = {"sub": caller, "client_id": caller}
    if isinstance(previous, dict):
        actor["act"] = previous
    return actor


def _confirmation(client, cert, x5t: str) -> str:
    """RFC 8705 §3.1 ``x5t#S256``; PSC's EDC value with the ``edc_x5t_hex`` compat flag."""
    if COMPAT_EDC_X5T_HEX not in (client.compat or ()):
        return x5t
    hex_digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return base64.b64encode(hex_digest.encode()).decode()
