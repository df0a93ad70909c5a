"""Client authentication at the token, introspection and revocation endpoints (RFC 6749
§2.3, RFC 7523 §2.2, OIDC Core §9), as PSC's Keycloak does it (psc.md §10):

- a ``client_secret_*`` client may send its secret in the Basic header or in the body,
  whichever it registered; a published PSC client (the PHP League provider) sends the
  same credentials in both at once: accepted when both carry the same client id and
  secret. Conflicting credentials are refused, and a client registered with
  ``strict_client_auth`` is held to RFC 6749 §2.3: one method, the registered one;
- ``private_key_jwt`` with a database-backed jti replay cache shared by every IdP
  process; an assertion for a client without registered keys is ``invalid_client``.

Each refusal says what to do (RFC 6749 §5.2 ``error_description``): a wrong secret is
"invalid client credentials"; a method the client did not register names the one it did."""

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


def _wrong_method(client, used: str) -> InvalidClientError:
    """The client authenticated (or tried to) with a method it did not register."""
    registered = client.token_endpoint_auth_method
    how = {"none": "send client_id and the PKCE code_verifier, no secret",
           "private_key_jwt": "send a client_assertion signed with your registered key"}
    strict = " only (strict_client_auth)" if client.strict_client_auth and \
        registered in SECRET_METHODS and used in SECRET_METHODS else ""
    return _conflict(f"this client is registered for {registered}{strict}, not {used}: "
                     + how.get(registered, f"authenticate with {registered}"))


def presented_method(request) -> tuple[str | None, str | None]:
    """The authentication method a token request tried, and the client id it named."""
    basic = request.headers.get("Authorization", "")
    if basic[:6].lower() == "basic ":
        try:
            return "client_secret_basic", extract_basic_authorization(request.headers)[0]
        except ValueError:
            return "client_secret_basic", None
    form = request.form
    if form.get("client_assertion") is not None:  # PrivateKeyJWT named the client if any
        return "private_key_jwt", None
    if form.get("client_secret") is not None:
        return "client_secret_post", form.get("client_id")
    return ("none", form.get("client_id")) if form.get("client_id") else (None, None)


def unauthenticated(query_client, request) -> InvalidClientError:
    """Why none of the endpoint's methods authenticated the request, said so that the
    developer knows what to change (Authlib's own answer lists every method)."""
    used, client_id = presented_method(request)
    client = query_client(client_id) if client_id else None
    if used is None:
        return _conflict("client authentication required: send your client credentials "
                         "with the method you registered")
    if client is None or (used in SECRET_METHODS and
                          client.check_endpoint_auth_method(used, "token")):
        return _conflict("invalid client credentials")
    return _wrong_method(client, used)


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
    if client is not None and client.token_endpoint_auth_method not in SECRET_METHODS:
        raise _wrong_method(client, "client_secret_basic")
    if client is None or not client.check_client_secret(secret):
        raise _conflict("invalid client credentials")
    if not client.check_endpoint_auth_method("client_secret_basic", "token"):
        raise _wrong_method(client, "client_secret_basic")  # strict, registered for post
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


class UntrustedJWT(ValueError):
    """Why a JWT a client signed is not trusted (the message says it to the client)."""


def signing_keys(client):
    """The keys that verify what ``client`` signs: its registered public asymmetric keys
    (``clients.jwks``: a symmetric key stored before these rules is never used); raises
    ``UntrustedJWT``."""
    if not (client.jwks or {}).get("keys"):
        raise UntrustedJWT("this client has no registered keys: register its jwks")
    try:
        return client.assertion_keys()
    except (client_keys.InvalidKeys, JoseError, ValueError, TypeError, KeyError) as exc:
        raise UntrustedJWT("the client's registered keys cannot verify signatures") from exc


def verified_claims(token: str, keys, algorithms) -> dict:
    """The claims of ``token``, a JWS signed with one of ``keys`` in one of ``algorithms``
    (RFC 7515; never ``none``): the one verification of what clients sign, client
    assertions (RFC 7523) and request objects (RFC 9101). Raises ``UntrustedJWT``."""
    try:
        return jwt.decode(token, keys, algorithms=list(algorithms)).claims
    except (JoseError, ValueError, TypeError) as exc:
        raise UntrustedJWT("its signature does not verify with the client's registered "
                           f"keys and algorithms ({', '.join(algorithms)})") from exc


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __call__(self, query_client, request):
        _refuse_failed_basic(request)
        return super().__call__(query_client, request)

    def get_audiences(self):
        issuer = settings().issuer
        return [issuer] + [issuer + PATHS[endpoint] for endpoint in (
            "token_endpoint", "introspection_endpoint", "revocation_endpoint",
            "pushed_authorization_request_endpoint",  # RFC 9126 §2
            "backchannel_authentication_endpoint")]  # CIBA Core §7.1

    def resolve_client_public_key(self, client):
        """Only a client registered for ``private_key_jwt``, with keys, is verified at all."""
        if client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD:
            raise _wrong_method(client, self.CLIENT_AUTH_METHOD)
        try:
            return signing_keys(client)
        except UntrustedJWT as exc:
            raise InvalidClientError(description=f"{exc} (private_key_jwt)") from exc

    def process_assertion_claims(self, assertion, resolve_key):
        """RFC 7523 §3 with the provider's algorithms only (never ``none``)."""
        try:
            claims = verified_claims(assertion, resolve_key, client_keys.ASSERTION_ALGS)
        except UntrustedJWT as exc:
            raise InvalidClientError(description="invalid client assertion") from exc
        self.verify_claims(claims)
        return claims

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
