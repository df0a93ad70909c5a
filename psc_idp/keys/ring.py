"""The key ring of a serving process: which key signs for each algorithm now, the JWKS
(RFC 7517) of every published key, and whether the keys can sign (``keys_health``).

Key state is ``keys_dir/keys.json`` (``keys.index``), looked at on every use (one ``stat``)
and re-read when it changed, so a rotation made by ``psc-idp keys`` in another process, on
any machine sharing ``keys_dir``, is picked up without a restart. A file rather than the
database: the file keys already live in that directory, the commands work before a
database exists (first installation, sandbox), signing costs no query, and since states
follow from timestamps a copy of the file distributed by configuration management works
too. The HSM is not touched at start-up (public keys come from keys.json): the PKCS#11
module is loaded on first signature, in the serving process, after any fork."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from joserfc.jwk import KeySet

from ..extensions import idp
from . import index, jws
from .index import KeyRingError
from .lifecycle import LIVE, complete, generate_keys, hsm, state
from .pkcs11 import Pkcs11Signer
from .signer import SUPPORTED_ALGS, KeyUnavailable, Signer, load_file_signer

log = logging.getLogger("psc_idp.keys")
RETRY_AFTER = 5.0  # seconds before a keys.json that did not load is tried again

__all__ = ["KeyRing", "KeyRingError", "generate_keys", "keys_health", "load_key_ring"]


class KeyRing:
    def __init__(self, keys_dir: Path, settings: dict) -> None:
        self.keys_dir, self.settings = Path(keys_dir), complete(settings)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._failed: tuple | None = None  # a stamp that did not load, and when to retry
        self._view: tuple[list[dict], dict[str, Signer]] = ([], {})  # replaced whole
        self._problem = ""
        self._key_set: tuple[tuple, KeySet] = ((), KeySet([]))
        if index.stamp(self.keys_dir) is None:
            raise KeyRingError(f"no signing keys in {self.keys_dir}: run "
                               "'psc-idp keys generate'")
        self._refresh(strict=True)
        if "RS256" not in self.algorithms:
            raise KeyRingError("no RS256 key (the PSC default): run 'psc-idp keys generate'")

    def _refresh(self, strict: bool = False) -> None:
        stamp = index.stamp(self.keys_dir)
        if stamp == self._stamp or self._failed and self._failed[0] == stamp and \
                time.monotonic() < self._failed[1]:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                entries, known = index.read(self.keys_dir), self._view[1]
                signers = {e["kid"]: known.get(e["kid"]) or self._load(e) for e in entries}
            except (KeyRingError, OSError, ValueError, TypeError, KeyError) as exc:
                if strict:
                    raise KeyRingError(f"cannot load the signing keys: {exc}") from exc
                self._failed = (stamp, time.monotonic() + RETRY_AFTER)
                self._problem = f"keys.json change not applied: {exc}"
                log.error("%s", self._problem)  # the previous keys keep serving
                return
            self._view, self._stamp, self._problem = (entries, signers), stamp, ""

    def _load(self, entry: dict) -> Signer:
        if entry.get("backend") == "pkcs11":
            return Pkcs11Signer(entry["kid"], entry["alg"], hsm(self.settings),
                                entry.get("jwk"))
        return load_file_signer(self.keys_dir, entry, self.settings.keys_passphrase)

    def _in(self, states, alg: str | None = None) -> list[tuple[dict, Signer]]:
        """(entry, signer) of the keys in one of ``states`` now."""
        self._refresh()
        (entries, signers), now = self._view, time.time()
        return [(e, signers[e["kid"]]) for e in entries
                if state(e, now) in states and (alg is None or e["alg"] == alg)]

    def signer(self, alg: str = "RS256") -> Signer:
        """The key that signs for ``alg`` now (the most recently activated one)."""
        active = self._in(("active",), alg)
        if not active:
            raise KeyRingError(f"no signing key for {alg}: run 'psc-idp keys generate'")
        return max(active, key=lambda pair: pair[0]["activate_at"])[1]

    @property
    def algorithms(self) -> list[str]:
        active = {e["alg"] for e, _ in self._in(("active",))}
        return [alg for alg in SUPPORTED_ALGS if alg in active]

    def jwks(self) -> dict:
        """Every key not removed: about to sign, signing, or retired with live tokens."""
        keys = []
        for entry, signer in self._in(("next", "active", "retired")):
            try:
                keys.append(signer.public_jwk())
            except KeyUnavailable as exc:  # an old entry without its JWK, token away
                log.error("key %s left out of the JWKS: %s", entry["kid"], exc)
        return {"keys": keys}

    def key_set(self) -> KeySet:
        """The published keys as a joserfc KeySet for verification, imported again only
        when the published set changes (importing costs about as much as a signature)."""
        jwks = self.jwks()
        kids = tuple(key["kid"] for key in jwks["keys"])
        cached_kids, key_set = self._key_set
        if cached_kids != kids:
            key_set = KeySet.import_key_set(jwks)
            self._key_set = (kids, key_set)
        return key_set

    def entries(self) -> list[dict]:
        """The index entries with their state now."""
        self._refresh()
        now = time.time()
        return [{**e, "state": state(e, now)} for e in self._view[0]]

    def health(self) -> dict:
        """Each key that signs or is about to: a test signature, verified against the key
        published for it (so a token whose key changed under the same label shows too)."""
        live = self._in(LIVE)
        problems = {"keys.json": self._problem} if self._problem else {}
        for entry, signer in live:
            try:
                token = jws.encode({"iat": int(time.time())}, signer)
                jws.decode(token, {"keys": [signer.public_jwk()]})
            except (KeyUnavailable, jws.InvalidJWT) as exc:
                problems[entry["kid"]] = str(exc)
        if "RS256" not in self.algorithms:
            problems["RS256"] = "no active RS256 key"
        return {"ok": not problems, "algorithms": self.algorithms,
                "keys": [{k: e[k] for k in ("kid", "alg", "state")} | {
                    "backend": e.get("backend", "file")} for e in self.entries()],
                "problems": problems}


def load_key_ring(keys_dir: Path, settings_or_passphrase: dict | str) -> KeyRing:
    return KeyRing(keys_dir, complete(settings_or_passphrase))


def keys_health() -> dict:
    """Whether the current app's signing keys can sign now (``/readyz``, console)."""
    return idp().keys.health()
