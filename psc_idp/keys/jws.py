"""The one place JWTs are assembled (RFC 7515 compact serialization, signed through a
``Signer``) and verified (joserfc, with an explicit algorithm allow-list: ``none`` never)."""

from __future__ import annotations

import base64
import json

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .signer import SUPPORTED_ALGS, Signer


class InvalidJWT(Exception):
    """A JWT failed parsing, signature or claim validation."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode(claims: dict, signer: Signer, typ: str = "JWT") -> str:
    header = {"alg": signer.alg, "typ": typ, "kid": signer.kid}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode())
        for part in (header, claims)
    )
    return f"{signing_input}.{b64url(signer.sign(signing_input.encode('ascii')))}"


def decode(token: str, jwks: dict | KeySet, *, typ: str | tuple[str, ...] | None = None,
           **claim_rules) -> dict:
    """Verify ``token`` against ``jwks`` (a JWK Set, or an imported KeySet) and the claim
    rules (joserfc registry options); ``typ``: the header ``typ`` value(s) accepted."""
    accepted = {typ.lower()} if isinstance(typ, str) else {t.lower() for t in typ or ()}
    try:
        keys = jwks if isinstance(jwks, KeySet) else KeySet.import_key_set(jwks)
        result = jwt.decode(token, keys, algorithms=list(SUPPORTED_ALGS))
        header_typ = result.header.get("typ")
        if accepted and (not isinstance(header_typ, str) or header_typ.lower() not in accepted):
            raise InvalidJWT(f"unexpected typ {header_typ!r}")
        jwt.JWTClaimsRegistry(leeway=5, **claim_rules).validate(result.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidJWT(str(exc) or type(exc).__name__) from exc
    return result.claims
