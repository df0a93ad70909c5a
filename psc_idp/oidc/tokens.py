"""Issuing tokens: JWT access tokens (RFC 9068), ID tokens (OIDC Core §2) and opaque
refresh tokens, all signed through the key ring's ``Signer``s."""

from __future__ import annotations

import secrets

from authlib.oidc.core.util import create_half_hash
from flask import current_app

from ..directory.lookup import find_identity
from ..keys import jws
from .claims import identity_claims, login_claims
from .consts import ACCESS_TOKEN_TYP
from .models import now
from .subject import Subject


def idp():
    return current_app.extensions["psc_idp"]


class TokenGenerator:
    """Authlib's token generator hook: builds the token response of a grant. The jti and
    the raw refresh token travel to ``save_token`` in private keys it removes."""

    def __call__(self, grant_type, client, user: Subject, scope, expires_in=None,
                 include_refresh_token=True):
        settings = idp().settings
        lifetime = settings["access_token_lifetime"]
        jti = secrets.token_urlsafe(24)
        token = {
            "token_type": "Bearer",
            "access_token": access_token(client, user, scope, jti, lifetime),
            "expires_in": lifetime,
            "scope": scope,
            "_jti": jti,
        }
        if include_refresh_token and client.check_grant_type("refresh_token"):
            token["refresh_token"] = secrets.token_urlsafe(32)
            token["refresh_expires_in"] = settings["refresh_token_lifetime"]
        return token


def access_token(client, subject: Subject, scope: str, jti: str, lifetime: int) -> str:
    issued = now()
    practitioner = find_identity(subject.id_nat)
    claims = {
        "iss": idp().settings["issuer"], "sub": subject.get_user_id(), "aud": client.client_id,
        "client_id": client.client_id, "exp": issued + lifetime, "iat": issued, "jti": jti,
        "scope": scope, **login_claims(subject), **identity_claims(subject, practitioner),
    }
    return jws.encode(claims, idp().keys.signer("RS256"), typ=ACCESS_TOKEN_TYP)


def id_token(client, subject: Subject, *, nonce=None, access_token_value=None) -> str:
    """OIDC Core §2 ID token; ``at_hash`` per §3.1.3.6."""
    issued = now()
    signer = idp().keys.signer(client.id_token_signed_response_alg or "RS256")
    practitioner = find_identity(subject.id_nat)
    claims = {
        "iss": idp().settings["issuer"], "sub": subject.get_user_id(), "aud": client.client_id,
        "exp": issued + idp().settings["id_token_lifetime"], "iat": issued,
        "jti": secrets.token_urlsafe(16), "azp": client.client_id,
        **login_claims(subject), **identity_claims(subject, practitioner),
    }
    if nonce:
        claims["nonce"] = nonce
    if access_token_value:
        claims["at_hash"] = create_half_hash(access_token_value, signer.alg).decode("ascii")
    return jws.encode(claims, signer)
