"""``private_key_jwt`` client authentication (RFC 7523 §2.2, OIDC Core §9) with a
database-backed jti replay cache shared by every IdP process."""

from __future__ import annotations

from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from .consts import PATHS
from .models import AssertionJti, now

MAX_ASSERTION_LIFETIME = 300


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self):
        issuer = current_app.extensions["psc_idp"].settings["issuer"]
        return [issuer, issuer + PATHS["token_endpoint"], issuer + PATHS["introspection_endpoint"],
                issuer + PATHS["revocation_endpoint"]]

    def resolve_client_public_key(self, client):
        return KeySet.import_key_set(client.jwks or {"keys": []})

    def validate_jti(self, claims, jti):
        expires = min(int(claims["exp"]), now() + MAX_ASSERTION_LIFETIME) + self.leeway
        try:
            with db.session.begin_nested():
                db.session.add(AssertionJti(client_id=claims["sub"], jti=jti, expires_at=expires))
        except IntegrityError:
            return False
        return True
