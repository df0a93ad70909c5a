"""Workload 5: full card logins per second — authorization request → login page → TLS
client-certificate login through nginx with the card key in SoftHSM (curl + PKCS#11) →
code → token (code exchange with client authentication).

    .venv/bin/python bench/card_login.py [--duration 20] [--concurrency 8] [--json FILE]

The server side (nginx, one gunicorn process group, PostgreSQL) is pinned to CPU 0, the
load generator (Python threads driving curl) to CPU 1, as in tests/test_production.py's
production shape. Prints logins/s, p50/p99 latency of a whole login, and errors
(``--json``: also as JSON, as ``bench/run.py all`` reads them)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from psc_idp.keys.ring import generate_keys  # noqa: E402
from psc_idp.sandbox.cards import SoftHsm  # noqa: E402
from psc_idp.sandbox.demo import DEMO_CARDS, provision  # noqa: E402
from psc_idp.sandbox.pki import build_pki  # noqa: E402
from tests.plugins.cards import Cards, curl_with_card  # noqa: E402
from tests.plugins.idp import _migrate, base_settings  # noqa: E402
from tests.plugins.postgres import PostgresServer  # noqa: E402
from tests.support import Browser, code_from  # noqa: E402
from tests.test_production import Production  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds (default 20)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="logins at once, one SoftHSM card reader each (default 8)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="sample the gunicorn worker with py-spy during the run: a "
                             "flame graph if FILE ends in .svg, collapsed stacks otherwise")
    parser.add_argument("--profile-gil", action="store_true",
                        help="profile only the thread holding the GIL (Python's CPU time)")
    args = parser.parse_args()
    if args.duration < 1 or args.concurrency < 1:
        sys.exit("card_login: --duration and --concurrency must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="psc-idp-bench-card-"))
    pki = build_pki(tmp / "pki")
    # one card reader per concurrent login (its own SoftHSM store), as one card per
    # professional: SoftHSM's file store is not made for many processes at once
    readers = [SoftHsm(tmp / f"softhsm-{i}").create() for i in range(args.concurrency)]
    tokens = [(reader, provision(reader, pki, DEMO_CARDS[0])) for reader in readers]
    cards = Cards(pki, readers[0])
    generate_keys(tmp / "keys", "test-passphrase")
    postgres = PostgresServer()
    postgres.start()
    subprocess.run(["taskset", "-apc", "0", str(_postmaster_pid(postgres))], check=False,
                   capture_output=True)
    postgres.execute("CREATE DATABASE bench")
    _migrate(base_settings(tmp / "keys", postgres.url("bench")))
    prod = Production(tmp, tmp / "keys", cards, postgres.url("bench"), processes=1,
                      prefix=("taskset", "-c", "0"))
    prod.start()
    os.sched_setaffinity(0, {1})
    rp = prod.rp()
    latencies, errors, stop = [], [0], time.monotonic() + args.duration

    def one_login(reader_card) -> None:
        reader, card = reader_card
        browser = Browser(prod.ca, lambda c, url: curl_with_card(reader, pki.tls_ca, c, url))
        started = time.perf_counter()
        try:
            response = browser.with_card(card, rp.authorization_url())
            assert rp.exchange(code_from(response)["code"]).status_code == 200
            latencies.append((time.perf_counter() - started) * 1000)
        except Exception as exc:  # counted, the run goes on
            errors[0] += 1
            if errors[0] <= 3:
                print(f"login failed: {type(exc).__name__}: {str(exc)[:200]}")

    def worker(card) -> None:
        while time.monotonic() < stop:
            one_login(card)

    try:
        one_login(tokens[0])
        latencies.clear()
        roots = {"nginx": [prod.nginx.process.pid],
                 "gunicorn": [process.pid for process in prod.processes],
                 "postgres": [_postmaster_pid(postgres)]}
        profiler = _profile(roots["gunicorn"], args.profile, args.duration, args.profile_gil) \
            if args.profile else None
        started, before, spent = time.monotonic(), _cpu_times(), _server_cpu(roots)
        threads = [threading.Thread(target=worker, args=(card,)) for card in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if profiler:
            profiler.wait(timeout=60)
        elapsed = time.monotonic() - started
        spent = {part: ticks - spent.get(part, 0) for part, ticks in _server_cpu(roots).items()}
        busy = [1 - (idle_after - idle_before) / (total_after - total_before)
                for (idle_before, total_before), (idle_after, total_after)
                in zip(before, _cpu_times(), strict=True)]

    finally:
        prod.stop()
        postgres.stop()
    ordered = sorted(latencies)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] if ordered else float("nan")
    print(f"\nfull card logins through nginx (server on CPU 0, load generator on CPU 1), "
          f"{args.concurrency} concurrent, {args.duration} s")
    print(f"logins/s/vCPU {len(latencies) / elapsed:.1f}, p50 {statistics.median(ordered):.0f} ms,"
          f" p99 {p99:.0f} ms, errors {errors[0]}")
    print(f"CPU busy: CPU 0 (server) {busy[0]:.0%}, CPU 1 (load generator) {busy[1]:.0%}")
    per_login = {part: round(ticks * 1000 / TICKS / max(1, len(latencies)), 1)
                 for part, ticks in sorted(spent.items())}
    print("server CPU per login (ms): " + ", ".join(f"{part} {ms}" for part, ms in
                                                      per_login.items())
          + f"; total {sum(per_login.values()):.1f} ms, so one vCPU serves at most "
          f"{1000 / max(0.1, sum(per_login.values())):.0f} logins/s")
    if args.json:
        args.json.write_text(json.dumps({
            "logins/s/vcpu": round(len(latencies) / elapsed, 1), "logins": len(latencies),
            "p50_ms": round(statistics.median(ordered)) if ordered else None,
            "p99_ms": round(p99) if ordered else None, "errors": errors[0],
            "concurrency": args.concurrency, "duration": args.duration,
            "cpu_busy": [round(b, 2) for b in busy],
            "server_cpu_ms_per_login": per_login}) + "\n")


def _cpu_times() -> list[tuple[int, int]]:
    """(idle, total) jiffies of each CPU, from /proc/stat."""
    times = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            values = [int(v) for v in line.split()[1:]]
            times.append((values[3] + values[4], sum(values)))
    return times


TICKS = os.sysconf("SC_CLK_TCK")


def _profile(arbiters: list[int], svg: Path, duration: int, gil: bool) -> subprocess.Popen:
    """py-spy sampling the first gunicorn worker (the arbiter's child) for the run: every
    running thread (waits on the database included), or only the one holding the GIL."""
    children = Path(f"/proc/{arbiters[0]}/task/{arbiters[0]}/children").read_text().split()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([spy, "record", "--pid", children[0], "--duration",
                             str(duration), "--rate", "200", *(["--gil"] if gil else []),
                             "--output", str(svg),
                             "--format", "flamegraph" if svg.suffix == ".svg" else "raw",
                             "--nonblocking"], stdout=subprocess.DEVNULL)


def _server_cpu(roots: dict[str, list[int]]) -> dict[str, int]:
    """CPU ticks (user + system) used so far by each part of the server: the processes
    ``roots`` names and their descendants (nginx and its worker, gunicorn's arbiter and
    worker, the postmaster and its backends). All live through the run, so the difference
    over it is what the logins cost the server."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            processes[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    totals = {}
    for part, pids in roots.items():
        tree, grew = set(pids), True
        while grew:
            found = {pid for pid, (parent, _) in processes.items() if parent in tree}
            grew = not found <= tree
            tree |= found
        totals[part] = sum(processes[pid][1] for pid in tree if pid in processes)
    return totals


def _postmaster_pid(server) -> int:
    return int((server.data / "postmaster.pid").read_text().split()[0])


if __name__ == "__main__":
    main()
