"""DPoP proofs (RFC 9449): checking a ``DPoP`` header (§4.3), server nonces (§8, §9) and
the replay cache of proof ``jti`` shared by every IdP process (§11.1), with the errors
the token endpoint (§5) and the resource endpoints (§7.1) answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.datastructures import Headers

from ..extensions import db
from ..settings import current as settings
from .consts import PATHS
from .models import DPoPJti, now

#: §4.2 ``typ`` of a proof
PROOF_TYP = "dpop+jwt"
#: asymmetric algorithms accepted for proofs, with the key each needs (§4.3 point 5);
#: Ed25519 is RFC 9864's fully-specified name (its ``EdDSA`` is deprecated)
ALGS = {"ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "PS256": ("RSA", None),
        "RS256": ("RSA", None), "Ed25519": ("OKP", "Ed25519")}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
#: how old a proof may be, and how far in the future its ``iat`` (clock skew), seconds
MAX_AGE, SKEW = 300, 60
MAX_PROOF = 8192
#: the shape of a JWK SHA-256 thumbprint (RFC 7638), as ``dpop_jkt`` and ``cnf.jkt``
JKT_LENGTH = 43


class ProofRegistry(JWSRegistry):
    """joserfc's checks, with room in the header for an RSA ``jwk`` (up to 4096 bits)."""

    max_header_length = 2048


REGISTRY = ProofRegistry(algorithms=list(ALGS))


class DPoPError(OAuth2Error):
    """An error of RFC 9449; at a resource endpoint it is a ``DPoP`` challenge (§7.1)."""

    scheme = "DPoP"
    status_code = 400


class InvalidDPoPProof(DPoPError):
    """§5, §7.1: the ``DPoP`` header is missing where required, malformed or invalid."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(DPoPError):
    """§8, §9: the proof must carry the nonce sent in the ``DPoP-Nonce`` header."""

    error = "use_dpop_nonce"

    def get_headers(self):
        return [*super().get_headers(), ("DPoP-Nonce", nonce())]


@dataclass(frozen=True)
class Proof:
    """A verified proof: the thumbprint of its key (RFC 7638) and its claims."""

    jkt: str
    claims: dict


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """§4.2 ``ath``: base64url of the SHA-256 of the access token's ASCII."""
    return b64url(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def is_thumbprint(value) -> bool:
    """A well-formed JWK SHA-256 thumbprint (``dpop_jkt``, §10)."""
    return isinstance(value, str) and len(value) == JKT_LENGTH and \
        all(c.isalnum() or c in "-_" for c in value)


def endpoint_url(endpoint: str) -> str:
    """The public URL of ``endpoint`` that ``htu`` names: from the issuer, never from the
    request's Host (behind a proxy the two differ)."""
    return settings().issuer + PATHS[endpoint]


def verify(headers: Headers, method: str, endpoint: str, access_token: str | None = None,
           nonce_required: bool = False) -> Proof | None:
    """The request's proof checked per §4.3 (``access_token``: at a resource endpoint,
    ``ath`` must be its hash); None when the request has no ``DPoP`` header. The jti is
    stored last: a proof refused for any other reason can be corrected and sent again."""
    values = headers.getlist("DPoP")
    if not values:
        return None
    if len(values) > 1 or not values[0] or len(values[0]) > MAX_PROOF:
        raise InvalidDPoPProof("send exactly one DPoP proof")
    claims, key = _verified(values[0])
    _check_claims(claims, method, endpoint_url(endpoint), access_token)
    _check_nonce(claims.get("nonce"), nonce_required)
    jkt = key.thumbprint()
    if not _first_use(jkt, claims["jti"]):
        raise InvalidDPoPProof("this DPoP proof was already used: sign a new one per request")
    return Proof(jkt, claims)


def _verified(value: str):
    try:
        header = jws.extract_compact(value.encode("ascii"), registry=REGISTRY).headers()
    except (JoseError, ValueError, TypeError, AttributeError, UnicodeError) as exc:
        raise InvalidDPoPProof("the DPoP proof is not a JWS") from exc
    if not isinstance(header.get("typ"), str) or header["typ"].lower() != PROOF_TYP:
        raise InvalidDPoPProof(f"the DPoP proof must have typ {PROOF_TYP}")
    alg, jwk = header.get("alg"), header.get("jwk")
    if not isinstance(alg, str) or alg not in ALGS:
        raise InvalidDPoPProof(f"DPoP proof alg must be one of {', '.join(ALGS)}")
    key = _public_key(jwk, *ALGS[alg])
    try:
        signed = jws.deserialize_compact(value, key, algorithms=[alg], registry=REGISTRY)
        claims = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidDPoPProof("the DPoP proof's signature does not verify") from exc
    if not isinstance(claims, dict):
        raise InvalidDPoPProof("the DPoP proof's payload is not a JSON object")
    return claims, key


def _public_key(jwk, kty: str, crv: str | None):
    """§4.3 point 7: the header's ``jwk``, a public key of the kind the alg needs."""
    if not isinstance(jwk, dict) or PRIVATE_MEMBERS & set(jwk) or jwk.get("kty") != kty \
            or (crv and jwk.get("crv") != crv):
        raise InvalidDPoPProof("the DPoP proof's jwk must be the public key of its alg")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidDPoPProof("the DPoP proof's jwk is not a valid key") from exc
    if kty == "RSA" and key.raw_value.key_size < 2048:
        raise InvalidDPoPProof("the DPoP proof's RSA key must have at least 2048 bits")
    return key


def _check_claims(claims: dict, method: str, url: str, access_token: str | None) -> None:
    """§4.3 points 3, 8, 9, 11, 12."""
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not 0 < len(jti) <= 255:
        raise InvalidDPoPProof("the DPoP proof needs a jti (at most 255 characters)")
    if claims.get("htm") != method:
        raise InvalidDPoPProof(f"the DPoP proof's htm must be {method}")
    if not isinstance(claims.get("htu"), str) or _normal(claims["htu"]) != _normal(url):
        raise InvalidDPoPProof(f"the DPoP proof's htu must be {url}")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or \
            not now() - MAX_AGE <= iat <= now() + SKEW:
        raise InvalidDPoPProof("the DPoP proof's iat is missing, too old or in the future "
                               "(check the clock)")
    if access_token is not None and not _same(claims.get("ath"), access_token_hash(access_token)):
        raise InvalidDPoPProof("the DPoP proof's ath must be the hash of the access token")


def _same(given, expected: str) -> bool:
    """Constant-time comparison of a claim with the value it must have (any JSON value)."""
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("ascii"))


def _normal(url: str) -> tuple:
    """§4.3 point 9: the URI without query and fragment, scheme and host case-insensitive,
    default port implied (RFC 3986 §6.2.2-§6.2.3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ()
    scheme = parts.scheme.lower()
    if port == {"https": 443, "http": 80}.get(scheme):
        port = None
    return scheme, (parts.hostname or ""), port, parts.path or "/"


# -- nonces (§8, §9): stateless, an HMAC of the current time window ---------------------

def _nonce_of(window: int) -> str:
    key = hashlib.sha256(b"psc-idp dpop nonce|" + settings().secret_key.encode()).digest()
    return b64url(hmac.new(key, str(window).encode(), hashlib.sha256).digest()[:24])


def nonce() -> str:
    """The nonce to send now (``DPoP-Nonce``); it changes every ``dpop_nonce_lifetime``
    seconds and is accepted until the end of the next period."""
    return _nonce_of(now() // settings().dpop_nonce_lifetime)


def _check_nonce(value, required: bool) -> None:
    if value is None and not required:
        return
    window = now() // settings().dpop_nonce_lifetime
    if not any(_same(value, _nonce_of(w)) for w in (window, window - 1)):
        raise UseDPoPNonce("the DPoP proof must carry the server's nonce (DPoP-Nonce)"
                           if value is None else "the DPoP nonce has expired: use the new "
                           "one (DPoP-Nonce)")


def nonce_required(endpoint: str) -> bool:
    """Setting ``dpop_nonce``: at the token endpoint (default, as FAPI 2.0 expects), at
    every endpoint, or nowhere."""
    mode = settings().dpop_nonce
    return mode == "all" or (mode == "token" and endpoint == "token_endpoint")


def _first_use(jkt: str, jti: str) -> bool:
    """§11.1: each proof once, remembered until it is too old to be accepted anyway, in a
    transaction of its own (the proof stays used whatever the request's outcome)."""
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        stored = connection.execute(dialect.insert(DPoPJti.__table__).values(
            jkt=jkt, jti_hash=hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest(),
            expires_at=now() + MAX_AGE + SKEW)
            .on_conflict_do_nothing().execution_options(preserve_rowcount=True))
    return stored.rowcount == 1
