"""Certificate revocation lists of the card CAs, cached and indexed in memory and refreshed
in a background thread: a login is a set lookup, never a download or a parse, whatever the
size of the CRL. A CRL is used only once its signature verifies against its issuer.

When the CRL of a card's issuer is missing or stale (past ``nextUpdate`` plus the grace
period) the configured policy decides: ``fail_closed`` (default) refuses the card,
``fail_open`` accepts it and logs a warning."""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

log = logging.getLogger("psc_idp.crl")


@dataclass(frozen=True)
class IndexedCrl:
    issuer: bytes  # DER of the issuer name
    serials: SerialSet
    this_update: float
    next_update: float | None
    source: str
    entries: int

    def stale(self, at: float, grace: float) -> bool:
        return self.next_update is not None and at > self.next_update + grace


class CrlError(Exception):
    pass


def parse(data: bytes, source: str) -> x509.CertificateRevocationList:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CrlError(f"{source}: not a CRL ({exc})") from exc


def read(source: str, timeout: float = 30) -> bytes:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=timeout) as response:  # noqa: S310
            return response.read()
    return Path(source).read_bytes()


#: above this size a CRL is parsed and indexed in a child process: parsing 30 MB holds the
#: interpreter lock for hundreds of milliseconds, which would stall the logins in progress
CHILD_PARSE_BYTES = 1_000_000
SERIAL_BYTES = 20  # RFC 5280 §4.1.2.2: serial numbers are at most 20 octets


class SerialSet:
    """Revoked serial numbers as sorted fixed-width big-endian records in one bytes object:
    built in a child process, handed over as bytes (no per-entry Python objects to create in
    the serving process), looked up by binary search (about 20 comparisons for 10^6)."""

    def __init__(self, records: bytes):
        self.records, self.count = records, len(records) // SERIAL_BYTES

    def __contains__(self, serial: int) -> bool:
        if serial < 0 or serial.bit_length() > SERIAL_BYTES * 8:
            return False
        key, low, high = serial.to_bytes(SERIAL_BYTES, "big"), 0, self.count
        while low < high:
            middle = (low + high) // 2
            start = middle * SERIAL_BYTES
            record = self.records[start:start + SERIAL_BYTES]
            if record < key:
                low = middle + 1
            elif record > key:
                high = middle
            else:
                return True
        return False

    def __len__(self) -> int:
        return self.count


def pack(serials) -> bytes:
    return b"".join(sorted(s.to_bytes(SERIAL_BYTES, "big") for s in serials
                           if 0 <= s and s.bit_length() <= SERIAL_BYTES * 8))


def index_in_child(data: bytes, issuers: dict[bytes, x509.Certificate],
                   source: str) -> IndexedCrl:
    """Parse, verify and index in ``python -m psc_idp.cards.crl``; only bytes come back."""
    import json
    import subprocess
    import sys
    import tempfile

    from cryptography.hazmat.primitives import serialization

    with tempfile.TemporaryDirectory(prefix="psc-idp-crl-") as tmp:
        crl_path, out_path = os.path.join(tmp, "crl"), os.path.join(tmp, "index")
        with open(crl_path, "wb") as handle:
            handle.write(data)
        with open(os.path.join(tmp, "issuers.pem"), "wb") as handle:
            for certificate in issuers.values():
                handle.write(certificate.public_bytes(serialization.Encoding.PEM))
        done = subprocess.run(
            [sys.executable, "-m", "psc_idp.cards.crl", crl_path,
             os.path.join(tmp, "issuers.pem"), out_path, source],
            capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise CrlError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                           else f"{source}: indexing failed")
        with open(out_path, "rb") as handle:
            header = json.loads(handle.readline())
            records = handle.read()
    return IndexedCrl(issuer=bytes.fromhex(header["issuer"]), serials=SerialSet(records),
                      this_update=header["this_update"], next_update=header["next_update"],
                      source=source, entries=header["entries"])


def index(crl: x509.CertificateRevocationList, issuers: dict[bytes, x509.Certificate],
          source: str) -> IndexedCrl:
    issuer_der = crl.issuer.public_bytes()
    issuer = issuers.get(issuer_der)
    if issuer is None:
        raise CrlError(f"{source}: issued by {crl.issuer.rfc4514_string()}, not a card CA")
    if not crl.is_signature_valid(issuer.public_key()):
        raise CrlError(f"{source}: signature does not verify against its issuer")
    next_update = crl.next_update_utc
    return IndexedCrl(
        issuer=issuer_der,
        serials=SerialSet(pack(entry.serial_number for entry in crl)),
        this_update=crl.last_update_utc.timestamp(),
        next_update=next_update.timestamp() if next_update else None,
        source=source, entries=len(crl),
    )


class CrlStore:
    """The indexed CRLs by issuer, swapped atomically by the refresher."""

    def __init__(self, sources, issuers, *, refresh_interval: float = 300,
                 grace: float = 3600, policy: str = "fail_closed"):
        self.sources = list(sources)
        self.issuers = {c.subject.public_bytes(): c for c in issuers}
        self.refresh_interval, self.grace, self.policy = refresh_interval, grace, policy
        self._by_issuer: dict[bytes, IndexedCrl] = {}
        self._mtimes: dict[str, float] = {}
        self._lock = threading.Lock()
        self._started_in: int | None = None
        self._wake = threading.Event()

    # --- reading (hot path) ---------------------------------------------------------------

    def status(self, certificate: x509.Certificate, at: float | None = None) -> str:
        """``good``, ``revoked``, ``unknown`` (no CRL for the issuer) or ``stale``."""
        self.start()
        crl = self._by_issuer.get(certificate.issuer.public_bytes())
        if crl is None:
            return "unknown"
        if certificate.serial_number in crl.serials:
            return "revoked"
        if crl.stale(at or time.time(), self.grace):
            return "stale"
        return "good"

    def snapshot(self) -> list[IndexedCrl]:
        return list(self._by_issuer.values())

    # --- loading --------------------------------------------------------------------------

    def start(self) -> None:
        """Load the CRLs (first call in this process) and start the background refresher.
        Called at server start; a forked worker starts its own."""
        if self._started_in == os.getpid() or not self.sources:
            return
        with self._lock:
            if self._started_in == os.getpid():
                return
            self.refresh()
            self._started_in = os.getpid()
            if self.refresh_interval > 0:
                threading.Thread(target=self._run, name="crl-refresh", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.refresh_interval)
            self._wake.clear()
            try:
                self.refresh()
            except Exception:  # keep refreshing whatever one round did
                log.exception("CRL refresh failed")

    def refresh_soon(self) -> None:
        self._wake.set()

    def refresh(self) -> list[str]:
        """Fetch, verify and index every source; keep the previous CRL of a source that
        fails. Returns the problems met (also logged)."""
        problems = []
        updated = dict(self._by_issuer)
        for source in self.sources:
            try:
                if not source.startswith(("http://", "https://")):
                    mtime = os.stat(source).st_mtime
                    if self._mtimes.get(source) == mtime:
                        continue
                data = read(source)
                crl = index_in_child(data, self.issuers, source) \
                    if len(data) > CHILD_PARSE_BYTES else \
                    index(parse(data, source), self.issuers, source)
            except (OSError, CrlError) as exc:
                problems.append(str(exc))
                log.warning("CRL %s not refreshed: %s", source, exc)
                continue
            current = updated.get(crl.issuer)
            if current is None or crl.this_update >= current.this_update:
                updated[crl.issuer] = crl
            if not source.startswith(("http://", "https://")):
                self._mtimes[source] = mtime
            log.info("CRL %s: %d entries, next update %s", source, crl.entries,
                     crl.next_update)
        self._by_issuer = updated
        return problems


def _child(crl_path: str, issuers_path: str, out_path: str, source: str) -> None:
    """The child process of ``index_in_child``: writes a JSON header line, then the records."""
    import json
    import sys

    with open(issuers_path, "rb") as handle:
        certificates = x509.load_pem_x509_certificates(handle.read())
    issuers = {c.subject.public_bytes(): c for c in certificates}
    try:
        with open(crl_path, "rb") as handle:
            crl = parse(handle.read(), source)
        indexed = index(crl, issuers, source)
    except CrlError as exc:
        sys.exit(str(exc))
    with open(out_path, "wb") as handle:
        handle.write(json.dumps({
            "issuer": indexed.issuer.hex(), "this_update": indexed.this_update,
            "next_update": indexed.next_update, "entries": indexed.entries}).encode() + b"\n")
        handle.write(indexed.serials.records)


if __name__ == "__main__":
    import sys

    _child(*sys.argv[1:5])
