"""Client authentication at the token, introspection and revocation endpoints (RFC 6749
§2.3, RFC 7523 §2.2, OIDC Core §9), as PSC's Keycloak does it (psc.md §10):

- a ``client_secret_*`` client may send its secret in the Basic header or in the body,
  whichever it registered; a published PSC client (the PHP League provider) sends the
  same credentials in both at once: accepted when both carry the same client id and
  secret. Conflicting credentials are refused, and a client registered with
  ``strict_client_auth`` is held to RFC 6749 §2.3: one method, the registered one;
- ``private_key_jwt`` with a database-backed jti replay cache shared by every IdP
  process; an assertion for a client without registered keys is ``invalid_client``."""

from __future__ import annotations

import hmac

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_post
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy.dialects import postgresql, sqlite

from ..clients import jwks as client_keys
from ..extensions import db
from ..settings import current as settings
from .consts import PATHS
from .models import AssertionJti, now

MAX_ASSERTION_LIFETIME = 300
SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def _conflict(description: str) -> InvalidClientError:
    return InvalidClientError(status_code=401, description=description)


def secret_basic(query_client, request):
    """``client_secret_basic``; the same credentials repeated in the body are accepted
    unless the client is strict, different ones never."""
    try:
        client_id, secret = extract_basic_authorization(request.headers)
    except ValueError as exc:  # Authlib's parsing of a malformed header (not UTF-8 …)
        raise _conflict("malformed Authorization header") from exc
    if not client_id or not secret:
        return None
    client = query_client(client_id)
    if client is None or not client.check_client_secret(secret):
        raise _conflict("invalid client credentials")
    form = request.form
    if form.get("client_assertion") is not None:
        raise _conflict("credentials sent with two methods (Basic and client_assertion)")
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if body_id is not None and body_id != client_id:
        raise _conflict("the client_id of the body differs from the Basic credentials")
    if body_secret is not None:
        if client.strict_client_auth:
            raise _conflict("credentials sent twice: use one method (RFC 6749 section 2.3)")
        if not hmac.compare_digest(body_secret.encode(), secret.encode()):
            raise _conflict("the client_secret of the body differs from the Basic "
                            "credentials")
    return client


def secret_post(query_client, request):
    """``client_secret_post``; tried only when the request has no Basic credentials (a
    Basic header that did not authenticate is never overridden by the body)."""
    _refuse_failed_basic(request)
    return authenticate_client_secret_post(query_client, request)


def _refuse_failed_basic(request) -> None:
    if request.headers.get("Authorization", "")[:6].lower() == "basic ":
        raise _conflict("invalid client credentials")


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __call__(self, query_client, request):
        _refuse_failed_basic(request)
        return super().__call__(query_client, request)

    def get_audiences(self):
        issuer = settings().issuer
        return [issuer, issuer + PATHS["token_endpoint"], issuer + PATHS["introspection_endpoint"],
                issuer + PATHS["revocation_endpoint"]]

    def resolve_client_public_key(self, client):
        """Only a client registered for ``private_key_jwt``, with keys, is verified at all,
        and only with its public asymmetric keys (``clients.jwks``: a symmetric key stored
        before these rules is never used)."""
        if client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD or \
                not (client.jwks or {}).get("keys"):
            raise InvalidClientError(description="this client does not authenticate with "
                                                 "private_key_jwt")
        try:
            return client.assertion_keys()
        except (client_keys.InvalidKeys, JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidClientError(description="the client's registered keys cannot "
                                                 "verify assertions") from exc

    def process_assertion_claims(self, assertion, resolve_key):
        """RFC 7523 §3 with the provider's algorithms only (never ``none``)."""
        try:
            token = jwt.decode(assertion, resolve_key,
                               algorithms=list(client_keys.ASSERTION_ALGS))
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="invalid client assertion") from exc
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims, jti):
        """RFC 7523 §3: each assertion once. The jti is stored at once, in a transaction
        of its own: it stays used whatever the request's outcome (a refused token
        request rolls back, introspection writes nothing)."""
        if not isinstance(jti, str) or not 0 < len(jti) <= 255 or \
                not isinstance(claims.get("exp"), int):
            return False
        expires = min(claims["exp"], now() + MAX_ASSERTION_LIFETIME) + self.leeway
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            stored = connection.execute(dialect.insert(AssertionJti.__table__).values(
                client_id=claims["sub"], jti=jti, expires_at=expires).on_conflict_do_nothing()
                .execution_options(preserve_rowcount=True))
        return stored.rowcount == 1  # 0: this jti was seen
