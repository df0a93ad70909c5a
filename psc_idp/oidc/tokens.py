"""Issuing tokens: JWT access tokens, ID tokens (OIDC Core §2) and opaque refresh tokens,
all signed through the key ring's ``Signer``s.

Access tokens come in two shapes, chosen per client (``access_token_format``):
- ``psc`` (default): as Pro Santé Connect sends them (psc.md §10) — header ``typ: JWT``,
  Keycloak's claims (``typ: "Bearer"``, ``azp``, ``session_state``, ``nonce``, ``scope``,
  ``preferred_username`` …). Resource servers built on common frameworks (Spring
  Security's default decoder) refuse ``typ: at+jwt``.
- ``rfc9068``: RFC 9068 §2 — header ``typ: at+jwt``, ``aud``, ``client_id``.

Either shape carries ``cnf.jkt`` when issued on a DPoP proof (RFC 9449 §6.1), and
``cnf.x5t#S256`` when bound to the client's TLS certificate (RFC 8705 §3.1)."""

from __future__ import annotations

import secrets

from authlib.oidc.core.util import create_half_hash

from ..extensions import idp
from ..keys import jws
from .claims import login_claims, named_identity, names_of
from .consts import ACCESS_TOKEN_TYP, METHOD_BY_AUTH_MODE
from .dpop_binding import bound_key
from .models import now
from .mtls_binding import bound_certificate
from .subject import Subject

#: the ``typ`` claim of PSC-shaped (Keycloak) access and refresh tokens
BEARER, REFRESH = "Bearer", "Refresh"


class TokenGenerator:
    """Authlib's token generator hook: builds the token response of a grant. The jti and
    the raw refresh token travel to ``save_token`` in private keys it removes."""

    def __call__(self, grant_type, client, user: Subject, scope, expires_in=None,
                 include_refresh_token=True):
        settings = idp().settings
        lifetime = settings.access_token_lifetime
        jti, jkt = secrets.token_urlsafe(24), bound_key()
        token = {
            "token_type": "DPoP" if jkt else "Bearer",  # RFC 9449 §5
            "access_token": access_token(client, user, scope, jti, lifetime, jkt,
                                         bound_certificate()),
            "expires_in": lifetime,
            "scope": scope,
            "_jti": jti,
        }
        if include_refresh_token and client.check_grant_type("refresh_token"):
            token["refresh_token"] = secrets.token_urlsafe(32)
            token["refresh_expires_in"] = settings.refresh_token_lifetime
        token["session_state"] = user.sid  # Keycloak's token response (psc.md §10)
        return token


def access_claims(client_id: str, subject: Subject, scope: str, *, jti: str, issued: int,
                  expires: int, psc_shape: bool, kind: str = BEARER,
                  jkt: str | None = None, x5t: str | None = None) -> dict:
    """The claims of an access token (or, for introspection, of a refresh token:
    ``kind``) issued to ``client_id`` for ``subject``; ``jkt``: bound to that DPoP key,
    ``x5t``: to the client certificate of that thumbprint."""
    base = {"exp": expires, "iat": issued, "auth_time": subject.auth_time, "jti": jti,
            "iss": idp().settings.issuer}
    confirmation = {"jkt": jkt, "x5t#S256": x5t}
    if jkt or x5t:
        base["cnf"] = {k: v for k, v in confirmation.items() if v}
    if not psc_shape:  # RFC 9068 §2.2
        return {**base, "aud": client_id, "sub": subject.get_user_id(),
                "client_id": client_id, "scope": scope, **login_claims(subject),
                **named_identity(subject, names_of(subject))}
    claims = {**base, "sub": subject.get_user_id(), "typ": kind, "azp": client_id}
    if subject.nonce:
        claims["nonce"] = subject.nonce
    return {**claims, "session_state": subject.sid, "acr": subject.acr, "scope": scope,
            "sid": subject.sid, "email_verified": False,
            "preferred_username": subject.id_nat}


def access_token(client, subject: Subject, scope: str, jti: str, lifetime: int,
                 jkt: str | None = None, x5t: str | None = None) -> str:
    issued = now()
    psc_shape = client.access_token_format != "rfc9068"
    claims = access_claims(client.client_id, subject, scope, jti=jti, issued=issued,
                           expires=issued + lifetime, psc_shape=psc_shape, jkt=jkt, x5t=x5t)
    return jws.encode(claims, idp().keys.signer("RS256"),
                      typ="JWT" if psc_shape else ACCESS_TOKEN_TYP)


def auth_level(subject: Subject) -> str:
    """PSC's ``auth_level`` claim for the login method (setting ``auth_level``)."""
    return idp().settings.auth_level[METHOD_BY_AUTH_MODE[subject.auth_mode]]


def id_token(client, subject: Subject, scope: str, *, nonce=None,
             access_token_value=None) -> str:
    """OIDC Core §2 ID token with PSC's extra claims (``auth_level``, ``scope``,
    ``session_state``: psc.md §10); ``at_hash`` per §3.1.3.6."""
    issued = now()
    signer = idp().keys.signer(client.id_token_signed_response_alg or "RS256")
    claims = {
        "iss": idp().settings.issuer, "sub": subject.get_user_id(), "aud": client.client_id,
        "exp": issued + idp().settings.id_token_lifetime, "iat": issued,
        "jti": secrets.token_urlsafe(16), "azp": client.client_id,
        **login_claims(subject), "auth_level": auth_level(subject), "scope": scope,
        "session_state": subject.sid, **named_identity(subject, names_of(subject)),
    }
    if nonce:
        claims["nonce"] = nonce
    if access_token_value:
        claims["at_hash"] = create_half_hash(access_token_value, signer.alg).decode("ascii")
    return jws.encode(claims, signer)
