"""A client's public keys for ``private_key_jwt`` (RFC 7523 §2.2, RFC 7517 §4-§5): public
asymmetric keys only — RSA of 2048 bits or more, EC on P-256 or P-384, OKP (Ed25519,
Ed448) — each naming, if it names one, an algorithm psc-idp verifies client assertions
with. Never a symmetric key (``kty: oct``: its secret would be stored and shown back) nor
a private member. Keys are kept with their public members only (RFC 7517 §4: members not
understood are ignored)."""

from __future__ import annotations

import base64

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet

from ..keys.signer import SUPPORTED_ALGS

#: the algorithms of client assertions (advertised as token_endpoint_auth_signing_alg_…)
ASSERTION_ALGS = SUPPORTED_ALGS
MAX_KEYS = 10
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
COMMON_MEMBERS = ("kty", "kid", "use", "alg", "key_ops", "x5c", "x5t", "x5t#S256")
PUBLIC_MEMBERS = {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x")}
CURVES = {"EC": ("P-256", "P-384"), "OKP": ("Ed25519", "Ed448")}
RSA_BITS = (2048, 8192)
#: algorithms each kind of key can verify, among ASSERTION_ALGS
ALGS_OF = {("RSA", None): {"RS256", "PS256"}, ("EC", "P-256"): {"ES256"}}


class InvalidKeys(ValueError):
    """Why a JWK Set is refused."""


def check_key_set(value) -> dict | None:
    """``value`` (a JWK Set or None) with each key checked and reduced to its public
    members; raises ``InvalidKeys``."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or \
            set(value) != {"keys"}:
        raise InvalidKeys('a JWK Set object {"keys": [...]}')
    if len(value["keys"]) > MAX_KEYS:
        raise InvalidKeys(f"at most {MAX_KEYS} keys")
    keys = [_checked(key, index) for index, key in enumerate(value["keys"])]
    kids = [key["kid"] for key in keys if "kid" in key]
    if len(kids) != len(set(kids)):
        raise InvalidKeys("two keys have the same kid")
    return {"keys": keys}


def public_view(jwks) -> dict | None:
    """What may be shown of a stored JWK Set: its public keys, public members only (a row
    stored before these rules may hold a symmetric or a private key)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        return None
    return {"keys": [
        {m: key[m] for m in (*COMMON_MEMBERS, *PUBLIC_MEMBERS[key["kty"]]) if m in key}
        for key in jwks["keys"] if isinstance(key, dict) and
        key.get("kty") in PUBLIC_MEMBERS and not PRIVATE_MEMBERS & set(key)]}


def can_verify_assertions(jwks: dict | None) -> bool:
    """True when at least one key can verify an assertion signed with ASSERTION_ALGS."""
    return any(_algs(key) for key in (jwks or {}).get("keys", []))


def verification_keys(jwks: dict | None) -> KeySet:
    """The registered keys able to verify client assertions, checked again (rows stored
    before these rules held keys they refuse); raises ``InvalidKeys`` when none is."""
    usable = []
    for index, key in enumerate((jwks or {}).get("keys", [])):
        try:
            checked = _checked(key, index)
        except InvalidKeys:
            continue
        if _algs(checked):
            usable.append(checked)
    if not usable:
        raise InvalidKeys("no registered key can verify client assertions")
    return KeySet.import_key_set({"keys": usable})


def _checked(key, index: int) -> dict:
    where = f"keys[{index}]"
    if not isinstance(key, dict):
        raise InvalidKeys(f"{where}: a JWK object")
    kty = key.get("kty")
    if kty == "oct":
        raise InvalidKeys(f"{where}: symmetric keys (kty oct) are refused: register the "
                          "public key of an RSA, EC or OKP key pair")
    if kty not in PUBLIC_MEMBERS:
        raise InvalidKeys(f"{where}: kty must be RSA, EC or OKP")
    if PRIVATE_MEMBERS & set(key):
        raise InvalidKeys(f"{where}: private keys must not be sent (only the public key)")
    public = {m: key[m] for m in (*COMMON_MEMBERS, *PUBLIC_MEMBERS[kty]) if m in key}
    _check_members(public, where)
    if kty == "RSA" and not RSA_BITS[0] <= _bits(public["n"]) <= RSA_BITS[1]:
        # checked before the import, which warns about short keys
        raise InvalidKeys(f"{where}: RSA keys of {RSA_BITS[0]} to {RSA_BITS[1]} bits")
    try:
        JWKRegistry.import_key(public)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidKeys(f"{where}: not a valid {kty} public key") from exc
    alg = public.get("alg")
    if alg is not None and alg not in _algs(public):
        raise InvalidKeys(f"{where}: alg {str(alg)[:20]!r} is not one this key can use among "
                          f"the assertion algorithms psc-idp accepts "
                          f"({', '.join(ASSERTION_ALGS)})")
    return public


def _check_members(key: dict, where: str) -> None:
    for member, value in key.items():
        if member in ("key_ops", "x5c"):
            if not isinstance(value, list) or len(value) > 10 or not all(
                    isinstance(v, str) and len(v) <= 8192 for v in value):
                raise InvalidKeys(f"{where}: {member} must be a list of strings")
        elif not isinstance(value, str) or len(value) > 2048:
            raise InvalidKeys(f"{where}: {member} must be a string")
    if key.get("use", "sig") != "sig":
        raise InvalidKeys(f"{where}: use must be 'sig' (keys that verify signatures)")
    if set(key.get("key_ops", ["verify"])) != {"verify"}:
        raise InvalidKeys(f"{where}: key_ops may only be ['verify']")
    if key["kty"] in CURVES and key.get("crv") not in CURVES[key["kty"]]:
        raise InvalidKeys(f"{where}: crv must be one of {', '.join(CURVES[key['kty']])}")


def _bits(value: str) -> int:
    try:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)),
                              "big").bit_length()
    except ValueError:
        return 0


def _algs(key: dict) -> set[str]:
    return ALGS_OF.get((key.get("kty"), key.get("crv")), set())
