"""Lock waits in PostgreSQL while a workload runs: every ``interval`` seconds, the backends
of the benchmark's database that wait for a lock (``pg_stat_activity.wait_event_type =
'Lock'``), what they wait for (``pg_locks``: the lock type, and the table — for a row lock,
``transactionid`` or ``tuple``, the table of the tuple lock the waiter holds, else the
table its statement names) and the statement that waits.

The summary counts, per (lock type, table, statement), the samples in which at least one
backend waited on it, the most backends waiting on it at once and the backends summed over
the samples. A row lock waited on by one statement in two backends at once, or in 5 % of
the samples or more, is a hot row: the requests queue on it one after another, and adding
processes adds waiters, not throughput."""

from __future__ import annotations

import collections
import re
import threading

import psycopg

QUERY = """
SELECT a.wait_event,
       coalesce(w.relation, (SELECT t.relation FROM pg_locks t WHERE t.pid = a.pid
                             AND t.locktype = 'tuple' AND t.granted LIMIT 1))::regclass::text,
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 90)
FROM pg_stat_activity a
LEFT JOIN pg_locks w ON w.pid = a.pid AND NOT w.granted
WHERE a.datname = %s AND a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
"""
ROW_LOCKS = {"transactionid", "tuple"}
STATEMENT_TABLE = re.compile(r"^(?:UPDATE|INSERT INTO|DELETE FROM|SELECT .*? FROM)\s+(\w+)",
                             re.I)
HOT_SHARE = 0.05


class LockSampler:
    """``with LockSampler(url, "bench"): run()``; then ``summary()``."""

    def __init__(self, url: str, database: str, interval: float = 0.05):
        self.url, self.database, self.interval = url, database, interval
        self.samples = 0
        self.waiting: list[int] = []                              # waiting backends, per sample
        self.seen: collections.Counter = collections.Counter()     # key → samples
        self.backends: collections.Counter = collections.Counter()  # key → backends, summed
        self.at_once: collections.Counter = collections.Counter()   # key → most at once
        self._stop = threading.Event()

    def __enter__(self):
        self.connection = psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.connection.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rows = self.connection.execute(QUERY, (self.database,)).fetchall()
            self.samples += 1
            self.waiting.append(len(rows))
            for key, count in collections.Counter(
                    (event, table or _table_of(query), query)
                    for event, table, query in rows).items():
                self.seen[key] += 1
                self.backends[key] += count
                self.at_once[key] = max(self.at_once[key], count)

    def _hot(self, key) -> bool:
        return key[0] in ROW_LOCKS and (
            self.at_once[key] >= 2 or self.seen[key] >= HOT_SHARE * max(1, self.samples))

    def summary(self) -> dict:
        """The samples, the share of them with a backend waiting, the most backends waiting
        at once, and every (lock type, table, statement) waited on, most seen first."""
        return {
            "samples": self.samples,
            "share_with_waits": round(sum(1 for w in self.waiting if w) / max(1, self.samples),
                                      3),
            "max_waiting": max(self.waiting, default=0),
            "waits": [{"lock": event, "table": table, "statement": query, "samples": n,
                       "backends": self.backends[key], "max_at_once": self.at_once[key],
                       "hot_row": self._hot(key)}
                      for key, n in self.seen.most_common()
                      for event, table, query in [key]],
        }


def _table_of(statement: str) -> str:
    """The table a statement writes or reads first (a ``transactionid`` wait whose waiter
    holds no tuple lock names none)."""
    found = STATEMENT_TABLE.match(statement)
    return found.group(1) if found else "?"


def describe(summary: dict) -> str:
    """One line for the table: no wait, or the share of samples with waits and the two
    waits seen most (lock type, table, samples), hot rows marked."""
    if not summary["max_waiting"]:
        return f"no lock wait ({summary['samples']} samples)"
    seen = "; ".join(
        f"{'HOT ROW ' if w['hot_row'] else ''}{w['lock']} on {w['table']} "
        f"{w['samples']}/{summary['samples']} samples, ≤{w['max_at_once']} at once "
        f"({w['statement'][:40]}…)" for w in summary["waits"][:2])
    return (f"lock waits in {summary['share_with_waits']:.0%} of "
            f"{summary['samples']} samples, ≤{summary['max_waiting']} at once: {seen}")
