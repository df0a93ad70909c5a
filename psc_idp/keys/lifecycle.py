"""The life of a signing key, and the changes ``psc-idp keys`` makes to it.

A key is published in the JWKS from its creation (``next``), signs from ``activate_at``
(``active``: relying parties that cache the JWKS learn it first), stops signing at
``retire_at``, when its successor activates (``retired``), and leaves the JWKS at
``remove_at``, once every token it signed has expired (the longest token lifetime plus
``key_retire_margin``); then ``keys rotate`` destroys its private half. States follow from
these timestamps alone: every process, and every copy of keys.json, agrees without
coordination."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from .. import settings as settings_module
from ..settings import Settings
from . import index
from .hsm import Hsm, token_for
from .index import KeyRingError
from .pkcs11 import TokenKeyError, create_token_key, destroy_token_key
from .signer import SUPPORTED_ALGS, KeyUnavailable, create_file_key

BACKENDS = ("file", "pkcs11")
LIVE = ("next", "active")


def state(entry: dict, now: float) -> str:
    """``next``, ``active``, ``retired`` or ``removed``."""
    if now >= entry.get("remove_at", float("inf")):
        return "removed"
    if now >= entry.get("retire_at", float("inf")):
        return "retired"
    return "active" if now >= entry.get("activate_at", entry["created"]) else "next"


def retention(settings: Settings) -> int:
    """How long a retired key stays published: the longest-lived token it signed."""
    return max(settings.access_token_lifetime, settings.id_token_lifetime) + \
        settings.key_retire_margin


def complete(settings_or_passphrase) -> Settings:
    """Settings, given settings, a dict of some (scripts, tests) or a passphrase."""
    if isinstance(settings_or_passphrase, str):
        return settings_module.defaults(keys_passphrase=settings_or_passphrase)
    if isinstance(settings_or_passphrase, dict):
        return settings_module.defaults(**settings_or_passphrase)
    return settings_or_passphrase


def hsm(settings: Settings) -> Hsm:
    if not settings.pkcs11_module or not settings.pkcs11_token_label:
        raise KeyRingError("pkcs11 keys need the pkcs11_module and pkcs11_token_label settings")
    return token_for(settings.pkcs11_module, settings.pkcs11_token_label,
                     settings.pkcs11_pin)


def generate_keys(keys_dir: Path, settings_or_passphrase, algs=SUPPORTED_ALGS,
                  backend: str | None = None) -> list[dict]:
    """One new key per algorithm. On an empty ring they sign at once; an algorithm added to
    a ring already in service is published first. An algorithm that has a key already is
    refused: replacing it is a rotation."""
    settings = complete(settings_or_passphrase)
    with index.editing(keys_dir) as entries:
        now = time.time()
        live = [e for e in entries if state(e, now) in LIVE]
        taken = sorted({e["alg"] for e in live} & set(algs))
        if taken:
            raise KeyRingError(f"{', '.join(taken)} already has a key: use 'psc-idp keys rotate'")
        activate_at = now + settings.key_publish_delay if live else now
        created = [_create(Path(keys_dir), settings, alg, backend, activate_at) for alg in algs]
        entries.extend(created)
    return created


def rotate(keys_dir: Path, settings: Settings, algs=None, *, publish_delay: int | None = None,
           backend: str | None = None, older_than: float | None = None) -> list[dict]:
    """A successor for each algorithm's signing key (by default each algorithm the ring
    has), published now and signing after ``publish_delay`` (``key_publish_delay``), when
    its predecessor retires. Skipped for an algorithm whose successor is already waiting,
    and with ``older_than`` (seconds) for one whose key has not signed that long yet."""
    settings = complete(settings)
    delay = settings.key_publish_delay if publish_delay is None else publish_delay
    with index.editing(keys_dir) as entries:
        now, created = time.time(), []
        live = [e for e in entries if state(e, now) in LIVE]
        if not live:
            raise KeyRingError("no signing keys yet: run 'psc-idp keys generate'")
        for alg in algs or [a for a in SUPPORTED_ALGS if any(e["alg"] == a for e in live)]:
            active = [e for e in live if e["alg"] == alg and state(e, now) == "active"]
            waiting = any(e["alg"] == alg and state(e, now) == "next" for e in live)
            if waiting or older_than is not None and _signed_for(active, now) < older_than:
                continue
            entry = _create(Path(keys_dir), settings, alg, backend, now + delay)
            for old in active:
                old["retire_at"] = entry["activate_at"]
                old["remove_at"] = entry["activate_at"] + retention(settings)
            entries.append(entry)
            created.append(entry)
    return created


def purge(keys_dir: Path, settings: Settings) -> list[str]:
    """Destroy the private half of removed keys and forget them; returns their kids. A key
    whose token cannot be reached now is kept for the next run."""
    settings = complete(settings)
    destroyed = []
    with index.editing(keys_dir) as entries:
        now = time.time()
        for entry in [e for e in entries if state(e, now) == "removed"]:
            try:
                if entry.get("backend") == "pkcs11":
                    destroy_token_key(hsm(settings), entry["kid"])
                else:
                    (Path(keys_dir) / entry["file"]).unlink(missing_ok=True)
            except KeyUnavailable:
                continue
            entries.remove(entry)
            destroyed.append(entry["kid"])
    return destroyed


def _signed_for(active: list[dict], now: float) -> float:
    """Seconds the current key has been signing (infinite when there is none)."""
    return now - max(e["activate_at"] for e in active) if active else float("inf")


def _create(keys_dir: Path, settings: Settings, alg: str, backend: str | None,
            activate_at: float) -> dict:
    backend = backend or settings.keys_backend
    if backend not in BACKENDS:
        raise KeyRingError(f"unknown keys backend {backend!r} (file or pkcs11)")
    kid = f"{alg.lower()}-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
    entry = {"kid": kid, "alg": alg, "backend": backend, "created": int(time.time()),
             "activate_at": int(activate_at)}
    if backend == "pkcs11":
        try:
            return entry | create_token_key(hsm(settings), kid, alg)
        except TokenKeyError as exc:
            raise KeyRingError(str(exc)) from exc
    return entry | create_file_key(keys_dir, kid, alg, settings.keys_passphrase)
