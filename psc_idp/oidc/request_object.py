"""Request objects (RFC 9101, OIDC Core §6.1): the parameters of an authorization request
in a JWT the client signed with a key of its registered ``jwks``, sent by value
(``request``) to the authorization endpoint or to the PAR endpoint (RFC 9126 §3).

Signed only (RFC 9101 §4: never ``alg: none``, never encrypted here), with the client's
``request_object_signing_alg`` or else any of the supported asymmetric algorithms; ``iss``
is the client, ``aud`` the issuer, ``exp`` required and at most ``MAX_LIFETIME`` ahead
(RFC 9101 §10.2 and FAPI 2.0 Message Signing §5.3.1: short-lived objects)."""

from __future__ import annotations

import time

from authlib.oauth2 import OAuth2Error

from ..clients import jwks as client_keys
from ..settings import current as settings
from .client_auth import UntrustedJWT, signing_keys, verified_claims

#: the longest a request object may be valid from now (seconds)
MAX_LIFETIME = 3600
LEEWAY = 60
#: claims of the JWT itself, not parameters of the request
JWT_CLAIMS = ("iss", "aud", "exp", "iat", "nbf", "jti", "sub")


class InvalidRequestObjectError(OAuth2Error):
    """RFC 9101 §6.2, OIDC Core §3.1.2.6: the request object is invalid."""

    error = "invalid_request_object"


def algorithms(client) -> list[str]:
    """What ``client`` may sign its request objects with."""
    registered = client.request_object_signing_alg
    return [registered] if registered else list(client_keys.ASSERTION_ALGS)


def parameters(token: str, client) -> dict[str, str]:
    """The authorization request parameters of ``token``, a request object of ``client``
    (its signature and claims checked); raises ``InvalidRequestObjectError``."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidRequestObjectError("the request object must be a signed JWT (JWS "
                                        "compact serialization); encrypted ones are not "
                                        "supported")
    try:
        claims = verified_claims(token, signing_keys(client), algorithms(client))
    except UntrustedJWT as exc:
        raise InvalidRequestObjectError(f"request object refused: {exc}") from exc
    _check_claims(claims, client.client_id)
    return {name: _text(value) for name, value in claims.items()
            if name not in JWT_CLAIMS and _text(value) is not None}


def _check_claims(claims: dict, client_id: str) -> None:
    """RFC 9101 §6.3 and §10.2: who signed it, for whom, until when."""
    current = int(time.time())
    exp = claims.get("exp")
    if claims.get("iss") != client_id:
        raise InvalidRequestObjectError("the request object's iss must be the client_id")
    if not _for_us(claims.get("aud")):
        raise InvalidRequestObjectError("the request object's aud must be the issuer "
                                        f"{settings().issuer}")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise InvalidRequestObjectError("the request object must carry exp")
    if exp < current - LEEWAY:
        raise InvalidRequestObjectError("the request object has expired")
    if exp > current + MAX_LIFETIME:
        raise InvalidRequestObjectError(f"the request object's exp must be at most "
                                        f"{MAX_LIFETIME} seconds ahead")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int) or nbf > current + LEEWAY):
        raise InvalidRequestObjectError("the request object is not valid yet (nbf)")
    if claims.get("client_id", client_id) != client_id:
        raise InvalidRequestObjectError("the request object's client_id differs from the "
                                        "request's")
    if "request" in claims or "request_uri" in claims:
        raise InvalidRequestObjectError("a request object must not contain request or "
                                        "request_uri (RFC 9101 section 4)")


def _for_us(aud) -> bool:
    issuer = settings().issuer
    return aud == issuer or (isinstance(aud, list) and issuer in aud)


def _text(value) -> str | None:
    """A parameter as the query would carry it (``max_age`` may come as a number); None
    for a value no query could carry (an object such as ``claims``, which psc-idp does not
    support): ignored, as unknown parameters are (RFC 6749 §3.1)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
