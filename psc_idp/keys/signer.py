"""The ``Signer`` interface every JWT goes through, and its file-key implementation
(RFC 7518 §3: RS256, PS256, ES256). An HSM signer plugs in behind the same interface."""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, RSAKey

SUPPORTED_ALGS = ("RS256", "PS256", "ES256")


class Signer(Protocol):
    kid: str
    alg: str

    def public_jwk(self) -> dict: ...

    def sign(self, data: bytes) -> bytes: ...


class FileSigner:
    """A private key held in process memory, loaded from an encrypted PEM file."""

    def __init__(self, kid: str, alg: str, private_key) -> None:
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported signing algorithm {alg}")
        self.kid, self.alg, self._key = kid, alg, private_key
        self._jwk = _public_jwk(kid, alg, private_key.public_key())

    def public_jwk(self) -> dict:
        return dict(self._jwk)

    def sign(self, data: bytes) -> bytes:
        if self.alg == "RS256":
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return self._key.sign(data, pss, hashes.SHA256())
        return raw_ecdsa(self._key.sign(data, ec.ECDSA(hashes.SHA256())))


def raw_ecdsa(der_signature: bytes, size: int = 32) -> bytes:
    """JWS ES256 wants r || s as fixed-size big-endian integers (RFC 7518 §3.4)."""
    r, s = decode_dss_signature(der_signature)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _public_jwk(kid: str, alg: str, public_key) -> dict:
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk = RSAKey.import_key(public_key).as_dict(private=False)
    else:
        jwk = ECKey.import_key(public_key).as_dict(private=False)
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def generate_private_key(alg: str):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
