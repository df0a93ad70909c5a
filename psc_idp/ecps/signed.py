"""Messages signed by an e-CPS device key, and the API's error.

Signed messages from the phone are compact JWS (ES256) with ``kid`` = the device id:
- device authentication (API calls): ``typ: ecps-auth+jwt``, claims ``iss`` (device id),
  ``aud`` (the issuer), ``iat``, ``exp`` (≤ 120 s), ``jti`` (single use);
- decision on a login request: ``typ: ecps-decision+jwt``, claims ``request`` (its id),
  ``nonce`` (the server nonce sent with the request), ``decision`` (``approve`` or
  ``deny``), ``code`` (the code picked, for an approval), ``iat``."""

from __future__ import annotations

import re
import secrets

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy.exc import IntegrityError

from ..clock import now
from ..errors import PscError
from ..extensions import db
from ..replay import AssertionJti
from ..settings import current as settings
from .models import Device

AUTH_TYP = "ecps-auth+jwt"
DECISION_TYP = "ecps-decision+jwt"
MAX_TOKEN = 4096
#: what an identifier from a message may look like before it reaches a query (a NUL or a
#: lone surrogate would make the database fail, not refuse)
_ID = re.compile(r"[A-Za-z0-9_.~:-]{1,128}")
_JTI = re.compile(r"[\x21-\x7e]{8,128}")


class EcpsError(PscError):
    """A phone's request is refused; ``code`` is the API error, ``status`` the HTTP one."""

    for_programs = True

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description, error=code, status=status)
        self.code = code


def public_key(jwk) -> ECKey:
    """Accept only a public EC P-256 JWK."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" \
            or "d" in jwk:
        raise EcpsError("invalid_key", "the device key must be a public EC P-256 JWK")
    try:
        return ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")})
    except (KeyError, TypeError, ValueError, JoseError) as exc:
        raise EcpsError("invalid_key", "the device key is not a valid P-256 point") from exc


def signed_claims(token: str, typ: str) -> tuple[Device, dict]:
    """The active device that signed ``token`` (its ``kid``) and the claims."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise EcpsError("invalid_token", "a signed message is required", 401)
    found: list[Device] = []

    def device_key(signed):
        header = signed.headers()
        if header.get("alg") != "ES256" or header.get("typ") != typ:
            raise EcpsError("invalid_token", f"expected an ES256 {typ}", 401)
        device = db.session.get(Device, kid) if (kid := identifier(header.get("kid"), 40)) \
            else None
        if device is None or device.status != "active":
            raise EcpsError("unknown_device", "this device is not enrolled or was revoked",
                            401)
        found.append(device)
        return public_key(device.public_jwk)

    try:
        decoded = jwt.decode(token, device_key, algorithms=["ES256"])
    except (JoseError, ValueError, TypeError) as exc:
        raise EcpsError("invalid_token", "malformed signed message, or its signature does "
                                         "not verify", 401) from exc
    if not isinstance(decoded.claims, dict):
        raise EcpsError("invalid_token", "the claims must be a JSON object", 401)
    return found[0], decoded.claims


def authenticate_device(token: str) -> Device:
    """Check an ``ecps-auth+jwt``: fresh, for this issuer, never seen before (the jti is
    recorded atomically: two concurrent uses of one message are one use and a replay)."""
    device, claims = signed_claims(token, AUTH_TYP)
    current = now()
    exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
    if claims.get("iss") != device.id or claims.get("aud") != settings().issuer:
        raise EcpsError("invalid_token", "wrong issuer or audience", 401)
    if not _integer(exp) or not _integer(iat) or exp < current or exp - iat > 120 or \
            iat > current + 30:
        raise EcpsError("invalid_token", "expired or too long-lived", 401)
    if not isinstance(jti, str) or not _JTI.fullmatch(jti):
        raise EcpsError("invalid_token", "a jti is required", 401)
    try:
        with db.session.begin_nested():
            db.session.add(AssertionJti(client_id=f"device:{device.id}", jti=jti,
                                        expires_at=exp))
    except IntegrityError:
        raise EcpsError("invalid_token", "replayed message", 401) from None
    device.last_used_at = current
    return device


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def identifier(value, longest: int) -> str:
    """``value`` if it can be an id psc-idp gave out (at most ``longest`` characters of
    ``[A-Za-z0-9_.~:-]``), else ``""``: nothing else is looked up."""
    return value if isinstance(value, str) and len(value) <= longest and \
        _ID.fullmatch(value) else ""


def same(given, expected: str) -> bool:
    """``given`` (anything a message holds) is the string ``expected``, compared in
    constant time."""
    return isinstance(given, str) and secrets.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode())
