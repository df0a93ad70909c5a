"""Workload 8: the national directory — ``psc-idp directory sync`` of a synthetic extract.

    .venv/bin/python bench/directory_import.py [--lines 1000000] [--postgres URL]
                                               [--private-postgres] [--no-sqlite]
                                               [--psc-columns] [--json FILE]

Generates an extract of N lines (2.5 lines per practitioner, as in the national file;
``tests/directory_synthetic.py``; the classic 49 columns, or PSC's 51 with
``--psc-columns``), then, for SQLite (a new file) and PostgreSQL (``--postgres
URL`` of an empty database, or ``--private-postgres``: a throw-away server with fsync off,
optimistic), runs the installed command in a child process, as an operator does:

1. the first sync: every practitioner created;
2. the same file again: nothing changes;
3. the next day's extract: 1 % removed, 1 % changed, 0.5 % new (the daily difference).

Prints, for each, the wall time, lines per second and the child's peak RSS (wait4);
``--json``: also as JSON, as ``bench/run.py all`` reads them."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from psc_idp.keys.ring import generate_keys  # noqa: E402
from tests.directory_synthetic import Operator, practitioners_for, write_synthetic  # noqa: E402
from tests.plugins.postgres import PostgresServer  # noqa: E402


def bench(label: str, operator: Operator, files: list) -> list[dict]:
    migrated = operator.run("db", "upgrade")
    if migrated.code != 0:
        raise SystemExit(f"{label}: cannot migrate: {migrated.stderr.strip()}")
    runs = []
    for name, extract in files:
        run = operator.run("directory", "sync", extract.path)
        if run.code != 0:
            raise SystemExit(f"{label}: {name}: exit {run.code}: {run.stderr.strip()}")
        lines = extract.lines
        print(f"{label:10} {name:32} {run.seconds:7.1f} s  {lines / run.seconds:8.0f} lines/s"
              f"  peak RSS {run.rss_mb:4.0f} MB   {run.stdout.splitlines()[-1].split(': ', 1)[1]}",
              flush=True)
        runs.append({"database": label, "run": name, "lines": lines,
                     "seconds": round(run.seconds, 1), "lines/s": round(lines / run.seconds),
                     "peak_rss_mb": round(run.rss_mb)})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000,
                        help="lines in the extract (default 1,000,000)")
    parser.add_argument("--postgres", help="URL of an empty PostgreSQL database")
    parser.add_argument("--private-postgres", action="store_true",
                        help="a throw-away PostgreSQL server (fsync off)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--psc-columns", action="store_true",
                        help="PSC's 51-column layout (Autres identifiants, genre d'activité)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.lines < 10:
        sys.exit("directory_import: --lines must be at least 10")
    runs = []
    with tempfile.TemporaryDirectory(prefix="psc-idp-bench-") as tmp:
        root = Path(tmp)
        generate_keys(root / "keys", "bench")
        count = practitioners_for(args.lines)
        layout = {"psc_columns": args.psc_columns}
        first = write_synthetic(root / "first.txt", count, **layout)
        second = write_synthetic(root / "second.txt", count, removed=range(0, count, 100),
                                 changed=range(50, count, 100), added=count // 200, **layout)
        print(f"extract: {first.lines} lines, {first.practitioners} practitioners, "
              f"{first.path.stat().st_size / 2**20:.0f} MB", flush=True)
        files = [("1. first sync (all created)", first), ("2. same file (no change)", first),
                 ("3. next day (1 %/1 %/0.5 %)", second)]
        if not args.no_sqlite:
            runs += bench("sqlite", Operator(root / "keys", f"sqlite:///{root}/bench.sqlite3",
                                     "bench"), files)
        server = None
        if args.private_postgres:
            server = PostgresServer()
            server.start()
            server.execute("CREATE DATABASE bench")
            args.postgres = server.url("bench")
        try:
            if args.postgres:
                runs += bench("postgresql", Operator(root / "keys", args.postgres, "bench"), files)
        finally:
            if server:
                server.stop()
    if args.json:
        args.json.write_text(json.dumps({"extract_lines": first.lines,
                                         "practitioners": first.practitioners,
                                         "runs": runs}) + "\n")


if __name__ == "__main__":
    main()
