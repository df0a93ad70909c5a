"""The key ring: which keys exist, which one signs for each algorithm, and the JWKS
(RFC 7517) that publishes them.

Key state lives in ``keys_dir/keys.json`` (shared by every psc-idp process, re-read when it
changes, so a rotation needs no restart). Each entry has a backend — ``file`` (encrypted
PKCS#8 PEM next to the index) or ``pkcs11`` (a key pair generated in the HSM token) — and a
life: published from creation, signing from ``activate_at`` (a new key is in the JWKS before
it signs, so that relying parties that cache the JWKS know it), retired at ``retire_at`` when
its successor activates, and still published until every token it signed has expired."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .pkcs11 import KeyUnavailable, Pkcs11Signer, Token
from .signer import SUPPORTED_ALGS, FileSigner, Signer, generate_private_key

INDEX = "keys.json"
RELOAD_EVERY = 2.0  # seconds between checks of keys.json


class KeyRingError(Exception):
    """No usable key: the message says which command creates one."""


class KeyRing:
    def __init__(self, keys_dir: Path, settings: dict) -> None:
        self.keys_dir, self.settings = Path(keys_dir), settings
        self._lock = threading.Lock()
        self._signers: dict[str, Signer] = {}
        self._entries: list[dict] = []
        self._mtime: float | None = None
        self._checked = 0.0
        self._reload(force=True)
        if not any(e["alg"] == "RS256" for e in self._entries):
            raise KeyRingError("no RS256 key (the PSC default): run 'psc-idp keys generate'")

    # --- state ------------------------------------------------------------------------------

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_EVERY:
            return
        self._checked = now
        index = self.keys_dir / INDEX
        try:
            mtime = index.stat().st_mtime
        except OSError as exc:
            raise KeyRingError(f"no signing keys in {self.keys_dir}: run "
                               "'psc-idp keys generate'") from exc
        if mtime == self._mtime and not force:
            return
        with self._lock:
            entries = json.loads(index.read_text())
            signers = {e["kid"]: self._signers.get(e["kid"]) or self._load(e) for e in entries}
            self._entries, self._signers, self._mtime = entries, signers, mtime

    def _load(self, entry: dict) -> Signer:
        if entry.get("backend", "file") == "pkcs11":
            return Pkcs11Signer(entry["kid"], entry["alg"], token(self.settings))
        pem = (self.keys_dir / entry["file"]).read_bytes()
        passphrase = self.settings["keys_passphrase"]
        key = serialization.load_pem_private_key(
            pem, password=passphrase.encode() if passphrase else None)
        return FileSigner(entry["kid"], entry["alg"], key)

    def retention(self) -> int:
        """How long a retired key stays published: the longest token lifetime + margin."""
        s = self.settings
        return max(s["access_token_lifetime"], s["id_token_lifetime"]) + 300

    # --- use --------------------------------------------------------------------------------

    def signer(self, alg: str = "RS256") -> Signer:
        self._reload()
        now = time.time()
        active = [e for e in self._entries if e["alg"] == alg and state(e, now, 0) == "active"]
        if not active:
            raise KeyRingError(f"no signing key for {alg}: run 'psc-idp keys generate'")
        newest = max(active, key=lambda e: e.get("activate_at", e["created"]))
        return self._signers[newest["kid"]]

    @property
    def algorithms(self) -> list[str]:
        self._reload()
        now = time.time()
        usable = {e["alg"] for e in self._entries if state(e, now, 0) == "active"}
        return [alg for alg in SUPPORTED_ALGS if alg in usable]

    def jwks(self) -> dict:
        """Every key not yet removed: next, active and recently retired ones."""
        self._reload()
        now, keep, keys = time.time(), self.retention(), []
        for entry in self._entries:
            if state(entry, now, keep) != "removed":
                try:
                    keys.append(self._signers[entry["kid"]].public_jwk())
                except KeyUnavailable:
                    continue  # an HSM key we cannot read now: /readyz says so
        return {"keys": keys}

    def health(self) -> dict:
        """Whether each signing algorithm can sign right now (a test signature)."""
        problems = {}
        for alg in self.algorithms:
            try:
                self.signer(alg).sign(b"psc-idp health check")
            except (KeyUnavailable, KeyRingError) as exc:
                problems[alg] = str(exc)
        return {"ok": not problems, "algorithms": self.algorithms, "problems": problems}

    def entries(self) -> list[dict]:
        self._reload(force=True)
        now, keep = time.time(), self.retention()
        return [{**e, "state": state(e, now, keep)} for e in self._entries]


def state(entry: dict, now: float, retention: int) -> str:
    """``next`` (published, not signing yet), ``active``, ``retired`` (published, not
    signing) or ``removed``."""
    activate_at = entry.get("activate_at", entry["created"])
    retire_at = entry.get("retire_at")
    if retire_at is not None and now >= retire_at:
        return "retired" if now < retire_at + retention else "removed"
    return "active" if now >= activate_at else "next"


def token(settings: dict) -> Token:
    if not settings["pkcs11_module"] or not settings["pkcs11_token_label"]:
        raise KeyRingError("pkcs11 keys need the pkcs11_module and pkcs11_token_label "
                           "settings")
    return Token(settings["pkcs11_module"], settings["pkcs11_token_label"],
                 settings["pkcs11_pin"])


def load_key_ring(keys_dir: Path, settings_or_passphrase) -> KeyRing:
    settings = settings_or_passphrase if isinstance(settings_or_passphrase, dict) else {
        "keys_passphrase": settings_or_passphrase, "access_token_lifetime": 120,
        "id_token_lifetime": 120, "pkcs11_module": "", "pkcs11_token_label": "",
        "pkcs11_pin": ""}
    return KeyRing(keys_dir, settings)


# --- changes (the psc-idp keys commands) ---------------------------------------------------

def _read(keys_dir: Path) -> list[dict]:
    index = keys_dir / INDEX
    return json.loads(index.read_text()) if index.exists() else []


def _write(keys_dir: Path, entries: list[dict]) -> None:
    keys_dir.mkdir(parents=True, exist_ok=True)
    tmp = keys_dir / f".{INDEX}.{os.getpid()}"
    tmp.write_text(json.dumps(entries, indent=2))
    tmp.replace(keys_dir / INDEX)  # atomic: processes read either the old or the new index


def _new_entry(keys_dir: Path, alg: str, settings: dict, backend: str,
               activate_at: float) -> dict:
    kid = f"{alg.lower()}-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
    entry = {"kid": kid, "alg": alg, "backend": backend, "created": int(time.time()),
             "activate_at": int(activate_at)}
    if backend == "pkcs11":
        token(settings).generate(kid, alg)
        return entry
    passphrase = settings["keys_passphrase"]
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    pem = generate_private_key(alg).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path = keys_dir / f"{kid}.pem"
    keys_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return {**entry, "file": path.name}


def generate_keys(keys_dir: Path, settings_or_passphrase, algs=SUPPORTED_ALGS,
                  backend: str = "file") -> list[dict]:
    """Create one key per algorithm that signs at once (first installation)."""
    settings = settings_or_passphrase if isinstance(settings_or_passphrase, dict) else {
        "keys_passphrase": settings_or_passphrase}
    entries = _read(keys_dir)
    created = [_new_entry(keys_dir, alg, settings, backend, time.time()) for alg in algs]
    _write(keys_dir, entries + created)
    return created


def rotate(keys_dir: Path, settings: dict, algs, publish_delay: int, backend: str = "file",
           older_than: int | None = None) -> list[dict]:
    """A successor for each algorithm's signing key: published now, signing after
    ``publish_delay`` seconds, when its predecessor retires. With ``older_than`` (seconds),
    only keys active for longer than that are rotated (for a daily cron)."""
    entries, now, created = _read(keys_dir), time.time(), []
    for alg in algs:
        current = [e for e in entries if e["alg"] == alg and state(e, now, 0) == "active"]
        pending = [e for e in entries if e["alg"] == alg and state(e, now, 0) == "next"]
        if pending:
            continue  # a rotation is already under way
        if older_than is not None and current and min(
                now - e.get("activate_at", e["created"]) for e in current) < older_than:
            continue
        entry = _new_entry(keys_dir, alg, settings, backend, now + publish_delay)
        for old in current:
            old["retire_at"] = entry["activate_at"]
        entries.append(entry)
        created.append(entry)
    _write(keys_dir, entries)
    return created
