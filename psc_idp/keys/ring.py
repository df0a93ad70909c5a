"""The key ring: which signers exist, which one signs for each algorithm, and the JWKS
(RFC 7517) that publishes them. File keys live in ``keys_dir`` as encrypted PKCS#8 PEM
with an index ``keys.json``; keys are never generated silently at start-up."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .signer import SUPPORTED_ALGS, FileSigner, Signer, generate_private_key

INDEX = "keys.json"


class KeyRingError(Exception):
    """No usable key: the message says which command creates one."""


class KeyRing:
    def __init__(self, signers: list[Signer]) -> None:
        self._signers = list(signers)
        self._by_alg: dict[str, Signer] = {}
        for signer in self._signers:  # the last key listed for an algorithm signs
            self._by_alg[signer.alg] = signer

    def signer(self, alg: str = "RS256") -> Signer:
        try:
            return self._by_alg[alg]
        except KeyError:
            raise KeyRingError(f"no signing key for {alg}: run 'psc-idp keys generate'") from None

    @property
    def algorithms(self) -> list[str]:
        return [alg for alg in SUPPORTED_ALGS if alg in self._by_alg]

    def jwks(self) -> dict:
        return {"keys": [s.public_jwk() for s in self._signers]}


def load_key_ring(keys_dir: Path, passphrase: str) -> KeyRing:
    index = keys_dir / INDEX
    if not index.exists():
        raise KeyRingError(f"no signing keys in {keys_dir}: run 'psc-idp keys generate'")
    entries = json.loads(index.read_text())
    signers = [_load_signer(keys_dir, entry, passphrase) for entry in entries]
    if "RS256" not in {s.alg for s in signers}:
        raise KeyRingError("no RS256 key (the PSC default): run 'psc-idp keys generate'")
    return KeyRing(signers)


def _load_signer(keys_dir: Path, entry: dict, passphrase: str) -> FileSigner:
    pem = (keys_dir / entry["file"]).read_bytes()
    password = passphrase.encode() if passphrase else None
    key = serialization.load_pem_private_key(pem, password=password)
    return FileSigner(entry["kid"], entry["alg"], key)


def generate_keys(keys_dir: Path, passphrase: str, algs=SUPPORTED_ALGS) -> list[dict]:
    """Create one new key per algorithm, appended to the index (they sign from now on)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    index = keys_dir / INDEX
    entries = json.loads(index.read_text()) if index.exists() else []
    created = [_write_key(keys_dir, alg, passphrase) for alg in algs]
    entries.extend(created)
    index.write_text(json.dumps(entries, indent=2))
    return created


def _write_key(keys_dir: Path, alg: str, passphrase: str) -> dict:
    kid = f"{alg.lower()}-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = generate_private_key(alg).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path = keys_dir / f"{kid}.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return {"kid": kid, "alg": alg, "file": path.name, "created": int(time.time())}
