"""The ``Signer`` interface every JWT goes through, and its file-key implementation
(RFC 7518 §3: RS256, PS256, ES256): encrypted PKCS#8 PEM files in ``keys_dir``. The HSM
signer (``keys.pkcs11``) plugs in behind the same interface."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, RSAKey

SUPPORTED_ALGS = ("RS256", "PS256", "ES256")


class KeyUnavailable(Exception):
    """The key cannot sign right now (HSM unreachable, token removed, PIN refused...): the
    request is answered 503 ``temporarily_unavailable`` and nothing is issued."""


class Signer(Protocol):
    kid: str
    alg: str

    def public_jwk(self) -> dict: ...

    def sign(self, data: bytes) -> bytes:
        """The JWS signature of ``data`` (RFC 7518 §3); raises ``KeyUnavailable``."""


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


def load_file_signer(keys_dir: Path, entry: dict, passphrase: str) -> FileSigner:
    pem = (keys_dir / entry["file"]).read_bytes()
    key = serialization.load_pem_private_key(
        pem, password=passphrase.encode() if passphrase else None)
    return FileSigner(entry["kid"], entry["alg"], key)


def create_file_key(keys_dir: Path, kid: str, alg: str, passphrase: str) -> dict:
    """A new key in ``keys_dir/<kid>.pem`` (mode 0600); returns its index fields."""
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    pem = generate_private_key(alg).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path = keys_dir / f"{kid}.pem"
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return {"file": path.name}
