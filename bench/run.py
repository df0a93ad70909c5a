"""Benchmarks of psc-idp against oidc-provider (the Node reference OpenID provider), with the
same token formats: RS256 ID token, RS256 JWT access token, rotating refresh tokens.

    .venv/bin/python bench/run.py WORKLOAD [--duration 20] [--connections 8] [--workers 1]
                                  [--no-peer] [--phones 1000] [--quick] [--json FILE]

WORKLOAD is one of
- token | refresh | introspection | userinfo: psc-idp, then the peer;
- scaling: code exchanges with 1, 2, 4 and 8 gunicorn workers against one PostgreSQL;
- phones: code exchanges without, then with ``--phones`` e-CPS phones waiting on the
  channel (``psc-idp ecps channel``, its own listener, no nginx in front), login requests
  for a sample of them meanwhile;
- all: every workload above, then the full card login through nginx
  (``bench/card_login.py``) and the directory sync of a 1,000,000-line extract
  (``bench/directory_import.py``, SQLite and PostgreSQL; 100,000 lines with ``--quick``):
  one table, and the JSON file.

Each run starts what it measures on this machine: a private PostgreSQL (never pinned) and
psc-idp under gunicorn (``--workers``, 4 threads each; one worker is pinned to CPU 0 with
taskset, more get every CPU), then oidc-provider (one Node process, in-memory store, pinned
to CPU 0); wrk (and the phones) run on the last CPU. Codes, phones and login requests are
made through each provider's own internals (psc-idp: rows written with its models;
oidc-provider: its AuthorizationCode model), never through a benchmark route. PostgreSQL's
lock waits are sampled during every psc-idp run (``bench/locks.py``). Prints req/s per vCPU
of the server, p50/p99 latency and errors (must be 0), and writes the table as JSON
(``--json``, default ``bench/results/<workload>-<time>.json``)."""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
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
    cpu_seconds,
    post,
    vcpus,
    wrk,
)
from tests.plugins.postgres import PostgresServer  # noqa: E402

PROTOCOL = list(SCRIPTS)
WORKLOADS = [*PROTOCOL, "scaling", "phones"]
EVERYTHING = [*WORKLOADS, "card login", "directory sync"]
SCALING = (1, 2, 4, 8)
SCALING_TARGET = 1.6  # 2 workers on 2 vCPUs against 1 worker, wrk sharing a CPU
NOTIFY_EVERY = 0.5  # seconds between login requests for the phones
DIRECTORY_LINES = {False: 1_000_000, True: 100_000}  # by --quick


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
    """The workloads against one prepared psc-idp database; each adds rows to ``rows`` and
    what does not fit in a row to ``details``."""

    def __init__(self, args, tmp: Path, postgres: PostgresServer, workloads: list[str]):
        self.args, self.tmp, self.rows, self.details = args, tmp, [], {}
        self.idp = PscIdp(tmp, postgres)
        with_phones = "phones" in workloads
        self.idp.prepare([fleet.extract(tmp, args.phones)] if with_phones else [])
        if with_phones:
            fleet.enrol(self.idp.app, args.phones, tmp / "phones.json")

    def run(self, workload: str) -> None:
        print(f"bench: {workload} …", file=sys.stderr, flush=True)
        if workload in PROTOCOL:
            self.protocol(workload)
        else:
            getattr(self, workload.replace(" ", "_"))()

    def psc_idp(self, workload: str, workers: int) -> dict:
        """psc-idp with ``workers`` processes, PostgreSQL's lock waits sampled meanwhile."""
        self.idp.start(workers)
        try:
            with locks.LockSampler(self.idp.database_url, "bench") as sampler:
                result = measure(self.idp, workload, self.args, self.tmp)
        finally:
            self.idp.stop()
        return _ours(result, workers, sampler)

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
        self.rows.append(_row(workload + self._workers(), ours, theirs,
                              locks.describe(ours["locks"])))

    def _workers(self) -> str:
        return f" ({self.args.workers} workers)" if self.args.workers > 1 else ""

    def scaling(self) -> None:
        """Code exchanges with 1, 2, 4, 8 workers: the total must not fall as workers are
        added, and no backend may queue on a hot row."""
        figures = {}
        for workers in SCALING:
            ours = self.psc_idp("token", workers)
            figures[workers] = ours["req/s"]
            self.rows.append(_row(
                f"scaling: token, {workers} worker{'s' * (workers > 1)}", ours, None,
                _scaling_note(figures, workers) + locks.describe(ours["locks"]),
                unit="req/s" if workers > 1 else "req/s/vCPU", value=ours["req/s"]))

    def phones(self) -> None:
        """Code exchanges without, then with ``--phones`` phones waiting on the channel;
        login requests for a sample of them meanwhile (every NOTIFY_EVERY s)."""
        without = self.psc_idp("token", self.args.workers)
        self.idp.start(self.args.workers)
        generator = None
        try:
            self.idp.start_channel()
            generator = subprocess.Popen(
                ["taskset", "-c", LOAD_CPU, sys.executable, str(REPO / "bench" / "phones.py"),
                 "--devices", str(self.tmp / "phones.json"), "--channel",
                 self.idp.channel_url, "--idp", self.idp.issuer], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, cwd=REPO)
            with_phones, report = self._with_phones(generator)
        finally:
            if generator and generator.poll() is None:
                generator.kill()
                generator.wait()
            self.idp.stop()
        self.details["phones"] = report
        lost = (sum(report["failures"].values()) + report["missed"]
                + sum(n for status, n in report["decisions"].items() if status != "approved"))
        with_phones["errors"] += lost
        self.rows.append(_row("phones: token, no phone" + self._workers(), without, None,
                              locks.describe(without["locks"])))
        self.rows.append(_row(f"phones: token, {self.args.phones} phones{self._workers()}",
                              with_phones, None, _phones_note(without, with_phones, report)))

    def _with_phones(self, generator: subprocess.Popen) -> tuple[dict, dict]:
        ready = generator.stdout.readline().split()
        sent, stop = {}, threading.Event()
        everyone = json.loads((self.tmp / "phones.json").read_text())

        def notify():
            for phone in random.sample(everyone, len(everyone)):
                if stop.wait(NOTIFY_EVERY):
                    return
                started = time.time()  # the phone may hear of it before start_login returns
                request_id, code = fleet.start_login(self.idp.app, phone["id_nat"])
                sent[request_id] = started
                generator.stdin.write(f"code {request_id} {code}\n")
                generator.stdin.flush()

        notifier = threading.Thread(target=notify, daemon=True)
        with locks.LockSampler(self.idp.database_url, "bench") as sampler:
            notifier.start()
            result = measure(self.idp, "token", self.args, self.tmp)
            stop.set()
            notifier.join()
        time.sleep(3)  # the last requests reach their phones, and are approved
        channel_cpu = cpu_seconds(self.idp.channel.pid)
        generator.stdin.close()
        report = json.loads(generator.stdout.read().splitlines()[-1])
        generator.wait(timeout=60)
        authenticated = report["polls"] + report["waiting"]
        delays = sorted(report["received"][r] - t for r, t in sent.items()
                        if r in report["received"])
        report.update(ready=int(ready[1]) if len(ready) > 1 else 0, notified=len(sent),
                      reached=len(delays), missed=len(sent) - len(delays),
                      delay_p50=round(statistics.median(delays), 3) if delays else None,
                      delay_max=round(delays[-1], 3) if delays else None,
                      channel_cpu_s=round(channel_cpu, 2),
                      channel_ms_per_poll=round(1000 * channel_cpu / max(1, authenticated), 2))
        del report["received"]
        return _ours(result, self.args.workers, sampler), report

    def card_login(self) -> None:
        """bench/card_login.py: nginx, one gunicorn worker and PostgreSQL on CPU 0."""
        found = self._script("card_login.py", "--duration", str(self.args.duration))
        self.details["card login"] = found
        self.rows.append({
            "workload": "card login (nginx, TLS, SoftHSM)", "unit": "logins/s/vCPU",
            "psc-idp": found["logins/s/vcpu"], "peer": None, "peer value": None,
            "ratio": None, "p50": f"{found['p50_ms']}ms", "p99": f"{found['p99_ms']}ms",
            "errors": found["errors"], "workers": 1, "vcpus": 1, "locks": None,
            "notes": f"{found['concurrency']} at once; CPU busy: server "
                     f"{found['cpu_busy'][0]:.0%}, load generator {found['cpu_busy'][-1]:.0%}"})

    def directory_sync(self) -> None:
        """bench/directory_import.py: SQLite, then a private PostgreSQL (fsync off)."""
        lines = DIRECTORY_LINES[self.args.quick]
        found = self._script("directory_import.py", "--lines", str(lines),
                             "--private-postgres")
        self.details["directory sync"] = found
        for run in found["runs"]:
            self.rows.append({
                "workload": f"directory {found['extract_lines']:,}: "
                            f"{run['run'][3:].split(' (')[0]}, {run['database']}",
                "unit": "lines/s", "psc-idp": run["lines/s"], "peer": None,
                "peer value": None, "ratio": None, "p50": None, "p99": None, "errors": 0,
                "workers": 1, "vcpus": None, "locks": None,
                "notes": f"{run['seconds']} s, peak RSS {run['peak_rss_mb']} MB"})

    def _script(self, name: str, *argv: str) -> dict:
        """Another benchmark script, its figures read from its --json file."""
        out = self.tmp / f"{name}.json"
        done = subprocess.run([sys.executable, str(REPO / "bench" / name), *argv,
                               "--json", str(out)], cwd=REPO, capture_output=True, text=True)
        if done.returncode or not out.exists():
            raise RuntimeError(f"bench/{name} failed (exit {done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
        return json.loads(out.read_text())


def _failed(workload: str, message: str) -> dict:
    return {"workload": workload, "unit": "", "psc-idp": None, "peer": None,
            "peer value": None, "ratio": None, "p50": None, "p99": None, "errors": "failed",
            "workers": None, "vcpus": None, "locks": None, "notes": message}


def _ours(result: dict, workers: int, sampler: locks.LockSampler) -> dict:
    return {**result, "workers": workers, "vcpus": vcpus(workers),
            "req/s/vcpu": result["req/s"] / vcpus(workers), "locks": sampler.summary()}


def _row(workload: str, ours: dict, theirs: dict | None, notes: str = "",
         unit: str = "req/s/vCPU", value: float | None = None) -> dict:
    """A wrk row: psc-idp per vCPU (or ``value``), the peer (one process, one vCPU)."""
    ratio = ours["req/s/vcpu"] / theirs["req/s"] if theirs else None
    return {"workload": workload, "unit": unit,
            "psc-idp": round(ours["req/s/vcpu"] if value is None else value, 1),
            "peer": f"oidc-provider ({theirs['format']} AT)" if theirs else None,
            "peer value": round(theirs["req/s"], 1) if theirs else None,
            "ratio": round(ratio, 3) if ratio else None,
            "p50": ours["p50"], "p99": ours["p99"],
            "errors": ours["errors"] + (theirs["errors"] if theirs else 0),
            "workers": ours["workers"], "vcpus": ours["vcpus"], "req/s": ours["req/s"],
            "notes": notes, "locks": ours["locks"]}


def _scaling_note(figures: dict[int, float], workers: int) -> str:
    """The multiple of one worker; with 2, the target (≥ 1.6×); beyond, whether the figure
    fell below the best so far (more than 5 % under)."""
    note = f"{figures[workers] / figures[1]:.2f}× 1 worker"
    if workers == 2:
        met = figures[2] >= SCALING_TARGET * figures[1]
        note += f" (target ≥ {SCALING_TARGET}×: {'met' if met else 'MISSED'})"
    elif workers > 2 and figures[workers] < 0.95 * max(figures.values()):
        note += " (FELL)"
    return note + "; "


def _phones_note(without: dict, ours: dict, report: dict) -> str:
    return (f"{ours['req/s'] / without['req/s']:.2f}× without phones; "
            f"{report['ready']}/{report['phones']} polls under way at the start, "
            f"{report['connected']} phones connected and {report['waiting']} waiting at the "
            f"end; {report['reached']}/{report['notified']} login requests reached their "
            f"phone (p50 {report['delay_p50']} s, max {report['delay_max']} s); "
            f"{report['polls']} polls answered, failures {report['failures'] or 0}; "
            f"decisions {report['decisions']}; channel CPU {report['channel_cpu_s']} s, "
            f"{report['channel_ms_per_poll']} ms per poll (phones generator "
            f"{report['cpu_s']} s)")


def print_table(rows: list[dict], args) -> None:
    print(f"\n{args.duration} s per run, {args.connections} wrk connections; psc-idp: gunicorn "
          f"({args.workers} worker{'s' * (args.workers > 1)} unless the row says; 1 worker: "
          f"CPU 0, more: every CPU), PostgreSQL unpinned; oidc-provider: one Node process, "
          f"CPU 0; wrk and phones: CPU {LOAD_CPU}; load average {os.getloadavg()[0]:.2f} "
          "at the end")
    print(f"{'workload':<44} {'unit':<13} {'psc-idp':>8} {'oidc-prov.':>10} {'ratio':>6} "
          f"{'p50':>9} {'p99':>9} {'errors':>6}  notes")
    for r in rows:
        print(f"{r['workload']:<44} {r['unit']:<13} {_cell(r['psc-idp'], '.0f'):>8} "
              f"{_cell(r['peer value'], '.0f'):>10} {_cell(r['ratio'], '.2f'):>6} "
              f"{r['p50'] or '—':>9} {r['p99'] or '—':>9} {r['errors']:>6}  {r['notes']}")


def _cell(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        sys.exit(f"bench/run.py: {message} (see --help)")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def parse(argv=None):
    parser = _Parser(description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("workload", choices=[*WORKLOADS, "all"])
    parser.add_argument("--duration", type=_at_least_one, default=20,
                        help="seconds per wrk run (default 20)")
    parser.add_argument("--connections", type=_at_least_one, default=8,
                        help="wrk connections (default 8)")
    parser.add_argument("--workers", type=_at_least_one, default=1,
                        help="gunicorn worker processes of psc-idp (default 1, on CPU 0); "
                        "scaling runs 1, 2, 4 and 8 whatever this says")
    parser.add_argument("--no-peer", action="store_true", help="psc-idp only")
    parser.add_argument("--phones", type=_at_least_one, default=1000,
                        help="phones waiting on the e-CPS channel (default 1000)")
    parser.add_argument("--quick", action="store_true",
                        help="all: a 100,000-line directory extract instead of 1,000,000")
    parser.add_argument("--json", type=Path, help="where to write the results (default "
                        "bench/results/<workload>-<time>.json)")
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    for tool in ("wrk", "taskset", "node"):
        if not shutil.which(tool):
            sys.exit(f"bench/run.py: {tool} is required (apt install wrk; scripts/setup "
                     "installs node)")
    workloads = EVERYTHING if args.workload == "all" else [args.workload]
    if "phones" in workloads:
        # the generator holds a socket per phone, and one more per decision it sends
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 2 * args.phones + 100:
            sys.exit(f"bench/run.py: --phones {args.phones} needs {2 * args.phones + 100} "
                     f"open files, the hard limit is {hard} (ulimit -Hn)")
    tmp = Path(tempfile.mkdtemp(prefix="psc-idp-bench-"))
    postgres = PostgresServer()
    postgres.start()
    started = datetime.now()
    try:
        bench = Bench(args, tmp, postgres, workloads)
        for workload in workloads:
            try:
                bench.run(workload)
            except Exception as exc:  # the others still run; the exit status tells
                message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                print(f"bench/run.py: {workload} failed: {message}", file=sys.stderr)
                bench.rows.append(_failed(workload, message))
        bench.details["audit chain"] = bench.idp.audit_chain()
        print(f"bench: audit chain after the runs: {bench.details['audit chain']}",
              file=sys.stderr)
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
    print(f"audit chain after the runs: {bench.details['audit chain']}")
    if any(r["errors"] == "failed" for r in bench.rows) or \
            bench.details["audit chain"].startswith("BROKEN"):
        sys.exit(1)


if __name__ == "__main__":
    main()
