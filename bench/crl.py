"""Workload 7: card validation with a CRL of 1,000,000 entries.

    .venv/bin/python bench/crl.py [--entries 1000000] [--logins 3000]

Builds the sandbox PKI and a CRL of N revoked serials (with ``openssl ca -gencrl``: building
it through Python objects would take minutes), then prints, pinned to CPU 0:
- card validation latency (chain, usage, CRL lookup) with an empty CRL and with the big one;
- the time to load/refresh the big CRL (download from file, signature check, indexing);
- validation latency while a refresh runs in the background thread (what a login sees);
- the memory the index takes."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from psc_idp.cards.crl import CrlStore  # noqa: E402
from psc_idp.cards.verify import CardVerifier, load_certificates  # noqa: E402
from psc_idp.sandbox.pki import build_pki, card_subject, pem  # noqa: E402


def big_crl(pki, entries: int, out: Path) -> None:
    work = out.parent / "ca"
    work.mkdir()
    with open(work / "index.txt", "w") as index:
        for serial in range(1, entries + 1):
            index.write(f"R\t351231000000Z\t240101000000Z\t{serial:040X}\tunknown\t/CN=x\n")
    (work / "crlnumber").write_text("1000\n")
    (work / "openssl.cnf").write_text(f"""[ca]
default_ca = CA
[CA]
database = {work}/index.txt
crlnumber = {work}/crlnumber
certificate = {pki.issuing_ca}
private_key = {pki.directory}/private/cards-ca.key
default_md = sha256
default_crl_days = 7
""")
    subprocess.run(["openssl", "ca", "-gencrl", "-batch", "-config", str(work / "openssl.cnf"),
                    "-out", str(out)], check=True, capture_output=True)


def latencies(verifier, certificate: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        verifier.verify(certificate)
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"p50 {statistics.median(ordered):.3f} ms, p99 {p99:.3f} ms, max {ordered[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--logins", type=int, default=3000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    tmp = Path(tempfile.mkdtemp(prefix="psc-idp-crl-"))
    pki = build_pki(tmp / "pki")
    key = ec.generate_private_key(ec.SECP256R1())
    card = pem(pki.authority().issue(card_subject("899700245667", "DOC0024566", "KIT",
                                                  "Médecin"), key.public_key())).decode()
    anchors = load_certificates([pki.trust_anchor])
    inter = load_certificates([pki.issuing_ca])

    def verifier(crl: Path) -> CardVerifier:
        store = CrlStore([str(crl)], anchors + inter, refresh_interval=0)
        store.start()
        return CardVerifier(anchors, inter, store)

    small = verifier(pki.crl)
    latencies(small, card, 200)
    print(f"empty CRL: validation {summary(latencies(small, card, args.logins))}")

    big = tmp / "big.crl"
    start = time.perf_counter()
    big_crl(pki, args.entries, big)
    print(f"built a CRL of {args.entries:,} entries ({big.stat().st_size / 1e6:.1f} MB) in "
          f"{time.perf_counter() - start:.1f} s (openssl ca)")

    tracemalloc.start()
    start = time.perf_counter()
    large = verifier(big)
    load = time.perf_counter() - start
    size = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    crl = large.crls.snapshot()[0]
    print(f"load + verify signature + index: {load:.2f} s, {crl.entries:,} entries, "
          f"peak Python memory {size:.0f} MB")
    print(f"{args.entries:,}-entry CRL: validation {summary(latencies(large, card, args.logins))}")

    # a refresh (new file) in the background while logins go on
    big.touch()
    os.utime(big, (time.time() + 5, time.time() + 5))
    done = threading.Event()

    def refresh():
        started = time.perf_counter()
        large.crls.refresh()
        done.duration = time.perf_counter() - started
        done.set()

    thread = threading.Thread(target=refresh)
    thread.start()
    during = []
    while not done.is_set():
        during.extend(latencies(large, card, 20))
    thread.join()
    print(f"background refresh took {done.duration:.2f} s; {len(during)} validations during it: "
          f"{summary(during)}")


if __name__ == "__main__":
    main()
