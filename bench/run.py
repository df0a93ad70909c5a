"""Benchmarks of psc-idp against oidc-provider (the Node reference OpenID provider), with the
same token formats: RS256 ID token, RS256 JWT access token, rotating refresh tokens.

    .venv/bin/python bench/run.py WORKLOAD [--duration 20] [--connections 8] [--workers 1]
                                  [--no-peer] [--phones 1000] [--json FILE]

WORKLOAD is one of
- token | refresh | introspection | userinfo: psc-idp, then the peer;
- scaling: code exchanges with 1, 2, 4 and 8 gunicorn workers against one PostgreSQL;
- phones: code exchanges without, then with ``--phones`` e-CPS phones waiting on the
  channel (``psc-idp ecps channel``), login requests for a sample of them meanwhile;
- all: every workload above, one table, and the JSON file.

Each run starts what it measures on this machine: a private PostgreSQL (never pinned) and
psc-idp under gunicorn (``--workers``, 4 threads each; one worker is pinned to CPU 0 with
taskset, more get every CPU), then oidc-provider (in-memory store, pinned to CPU 0); wrk
(and the phones) run on the last CPU. Codes, phones and login requests are made through
each provider's own internals (psc-idp: rows written with its models; oidc-provider: its
AuthorizationCode model), never through a benchmark route. PostgreSQL's lock waits are
sampled during every psc-idp run (``locks``). Prints req/s per vCPU of the server, p50/p99
latency and errors (must be 0)."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import locks  # noqa: E402
from bench import phones as fleet  # noqa: E402
from bench.servers import (  # noqa: E402
    LOAD_CPU,
    REDIRECT,
    SCRIPTS,
    Peer,
    PscIdp,
    post,
    vcpus,
    wrk,
)
from tests.plugins.postgres import PostgresServer  # noqa: E402

PROTOCOL = list(SCRIPTS)
WORKLOADS = [*PROTOCOL, "scaling", "phones"]
SCALING = (1, 2, 4, 8)
NOTIFY_EVERY = 0.5  # seconds between login requests for the phones


def measure(provider, workload: str, args, tmp: Path) -> dict:
    """One wrk run of ``workload`` against ``provider`` (codes and tokens made first)."""
    env = {"AUTH": provider.auth, "REDIRECT_URI": urllib.parse.quote(REDIRECT, safe="")}
    if workload == "token":
        path = tmp / f"codes-{provider.port}.txt"
        path.write_text("\n".join(provider.mint_codes(2000 * args.duration)) + "\n")
        env["CODES"] = str(path)
        return wrk(provider.token_url, SCRIPTS[workload], env, args.duration, args.connections)
    warm = provider.mint_codes(args.connections + 1)
    tokens = [post(provider.token_url, {"grant_type": "authorization_code", "code": c,
                                        "redirect_uri": REDIRECT}, provider.auth)
              for c in warm]
    if workload == "refresh":
        path = tmp / f"refresh-{provider.port}.txt"
        path.write_text("\n".join(t["refresh_token"] for t in tokens[:args.connections]) + "\n")
        env["TOKENS"] = str(path)
        return wrk(provider.token_url, SCRIPTS[workload], env, args.duration, args.connections)
    env["TOKEN"] = tokens[-1]["access_token"]
    url = provider.introspection_url if workload == "introspection" else provider.userinfo_url
    return wrk(url, SCRIPTS[workload], env, args.duration, args.connections)


class Bench:
    """The workloads against one prepared psc-idp database; each adds rows to ``rows``."""

    def __init__(self, args, tmp: Path, postgres: PostgresServer, workloads: list[str]):
        self.args, self.tmp, self.rows, self.details = args, tmp, [], {}
        self.idp = PscIdp(tmp, postgres)
        with_phones = "phones" in workloads
        self.idp.prepare([fleet.extract(tmp, args.phones)] if with_phones else [])
        if with_phones:
            fleet.enrol(self.idp.app, args.phones, tmp / "phones.json")

    def psc_idp(self, workload: str, workers: int) -> dict:
        """psc-idp with ``workers`` processes, PostgreSQL's lock waits sampled meanwhile."""
        self.idp.start(workers)
        try:
            with locks.LockSampler(self.idp.database_url, "bench") as sampler:
                result = measure(self.idp, workload, self.args, self.tmp)
        finally:
            self.idp.stop()
        return {**result, "workers": workers, "vcpus": vcpus(workers),
                "req/s/vcpu": result["req/s"] / vcpus(workers), "locks": sampler.summary()}

    def peer(self, workload: str) -> dict | None:
        if self.args.no_peer:
            return None
        # oidc-provider cannot introspect JWT access tokens nor take resource-bound ones at
        # userinfo: those two workloads use its opaque access tokens
        formats = "jwt" if workload in ("token", "refresh") else "opaque"
        peer = Peer(self.tmp, 2000 * self.args.duration if workload == "token"
                    else self.args.connections + 1, formats)
        peer.start()
        try:
            return {**measure(peer, workload, self.args, self.tmp), "format": formats}
        finally:
            peer.stop()

    def protocol(self, workload: str) -> None:
        ours, theirs = self.psc_idp(workload, self.args.workers), self.peer(workload)
        self.rows.append(_row(workload, ours, theirs))

    def scaling(self) -> None:
        """Code exchanges with 1, 2, 4, 8 workers: the total must not fall as workers are
        added, and no backend may queue on a hot row."""
        first = None
        for workers in SCALING:
            ours = self.psc_idp("token", workers)
            first = first or ours["req/s"]
            row = _row(f"scaling: token, {workers} worker{'s' * (workers > 1)}", ours, None,
                       f"{ours['req/s']:.0f} req/s = {ours['req/s'] / first:.2f}× 1 worker; "
                       + locks.describe(ours["locks"]))
            self.rows.append(row)

    def run(self, workload: str) -> None:
        if workload == "scaling":
            self.scaling()
        elif workload == "phones":
            self.phones()
        else:
            self.protocol(workload)

    def phones(self) -> None:
        """Code exchanges without, then with ``--phones`` phones waiting on the channel;
        login requests for a sample of them meanwhile (every NOTIFY_EVERY s)."""
        without = self.psc_idp("token", self.args.workers)
        self.idp.start(self.args.workers)
        self.idp.start_channel()
        try:
            with_phones, report = self._with_phones()
        finally:
            self.idp.stop()
        self.details["phones"] = report
        self.rows.append(_row(f"phones: token, {self.args.phones} phones waiting", with_phones,
                              None, _phones_note(without, with_phones, report)))
        self.rows.append(_row("phones: token, no phone", without, None))

    def _with_phones(self) -> tuple[dict, dict]:
        generator = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, sys.executable, str(REPO / "bench" / "phones.py"),
             "--devices", str(self.tmp / "phones.json"), "--channel", self.idp.channel_url,
             "--idp", self.idp.issuer], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=REPO)
        ready = generator.stdout.readline().split()
        sent, stop = {}, threading.Event()
        everyone = json.loads((self.tmp / "phones.json").read_text())

        def notify():
            for phone in random.sample(everyone, len(everyone)):
                if stop.wait(NOTIFY_EVERY):
                    return
                request_id, code = fleet.start_login(self.idp.app, phone["id_nat"])
                sent[request_id] = time.time()
                generator.stdin.write(f"code {request_id} {code}\n")
                generator.stdin.flush()

        notifier = threading.Thread(target=notify, daemon=True)
        with locks.LockSampler(self.idp.database_url, "bench") as sampler:
            notifier.start()
            result = measure(self.idp, "token", self.args, self.tmp)
            stop.set()
            notifier.join()
        time.sleep(3)  # the last requests reach their phones, and are approved
        generator.stdin.close()
        report = json.loads(generator.stdout.read().splitlines()[-1])
        generator.wait(timeout=60)
        workers = self.args.workers
        delays = sorted(report["received"][r] - t for r, t in sent.items()
                        if r in report["received"])
        report.update(ready=int(ready[1]) if len(ready) > 1 else 0, notified=len(sent),
                      reached=len(delays), missed=len(sent) - len(delays),
                      delay_p50=round(statistics.median(delays), 3) if delays else None,
                      delay_max=round(delays[-1], 3) if delays else None)
        del report["received"]
        return {**result, "workers": workers, "vcpus": vcpus(workers),
                "req/s/vcpu": result["req/s"] / vcpus(workers),
                "locks": sampler.summary()}, report


def _row(workload: str, ours: dict, theirs: dict | None, notes: str = "") -> dict:
    ratio = ours["req/s/vcpu"] / theirs["req/s"] if theirs else None
    return {"workload": workload, "workers": ours["workers"], "vcpus": ours["vcpus"],
            "req/s": round(ours["req/s"], 1), "req/s/vcpu": round(ours["req/s/vcpu"], 1),
            "p50": ours["p50"], "p99": ours["p99"], "errors": ours["errors"],
            "peer req/s": round(theirs["req/s"], 1) if theirs else None,
            "peer": f"oidc-provider ({theirs['format']} AT)" if theirs else None,
            "peer errors": theirs["errors"] if theirs else None,
            "ratio": round(ratio, 3) if ratio else None, "notes": notes,
            "locks": ours["locks"]}


def _phones_note(without: dict, ours: dict, report: dict) -> str:
    failures = sum(report["failures"].values())
    return (f"{ours['req/s'] / without['req/s']:.2f}× without phones; "
            f"{report['ready']}/{report['phones']} polls under way; "
            f"{report['reached']}/{report['notified']} requests reached their phone "
            f"(p50 {report['delay_p50']} s, max {report['delay_max']} s); "
            f"{report['polls']} polls, {failures} failed; "
            f"decisions {report['decisions']}")


def print_table(rows: list[dict], args) -> None:
    print(f"\n{args.duration} s per run, {args.connections} wrk connections; psc-idp: gunicorn "
          "(1 worker: CPU 0; more: every CPU), PostgreSQL unpinned; oidc-provider: CPU 0; "
          f"wrk: CPU {LOAD_CPU}; load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'workload':<40} {'req/s/vCPU':>10} {'p50':>9} {'p99':>9} {'peer req/s':>10} "
          f"{'ratio':>6} {'errors':>6}  notes")
    for r in rows:
        peer = f"{r['peer req/s']:.0f}" if r["peer req/s"] is not None else "—"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        errors = r["errors"] + (r["peer errors"] or 0)
        print(f"{r['workload']:<40} {r['req/s/vcpu']:>10.0f} {r['p50']:>9} {r['p99']:>9} "
              f"{peer:>10} {ratio:>6} {errors:>6}  {r['notes']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=[*WORKLOADS, "all"])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="where to write the results (default "
                        "bench/results/<workload>-<time>.json)")
    args = parser.parse_args()
    for tool in ("wrk", "taskset", "node"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is required (apt install wrk; scripts/setup installs "
                     "node)")
    workloads = WORKLOADS if args.workload == "all" else [args.workload]
    tmp = Path(tempfile.mkdtemp(prefix="psc-idp-bench-"))
    postgres = PostgresServer()
    postgres.start()
    started = datetime.now()
    try:
        bench = Bench(args, tmp, postgres, workloads)
        for workload in workloads:
            bench.run(workload)
    finally:
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(bench.rows, args)
    path = args.json or REPO / "bench" / "results" / \
        f"{args.workload}-{started:%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"), "workload": args.workload,
        "options": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(), "rows": bench.rows,
        "details": bench.details}, indent=1) + "\n")
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
