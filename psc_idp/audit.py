"""The audit trail: one durable record per authentication, token issuance, refresh,
revocation, logout, e-CPS change and admin action, written in the caller's transaction —
the record commits with the action or not at all. Never a secret, code, token or PIN.

Records are hash-chained: each carries ``seq``, the hash of the previous record and its own
hash over its content and that previous hash. Appends are serialised by the one-row
``audit_head`` table, updated first thing (row lock on PostgreSQL, the write lock on
SQLite), so several processes never fork the chain. The database refuses UPDATE and DELETE on
``audit_event`` (triggers; TRUNCATE too on PostgreSQL) except during ``psc-idp audit purge``,
which keeps an anchor (the hash the first remaining record chains from) so the rest still
verifies. ``verify`` reads one snapshot, so appends made meanwhile are not tampering; a row
outside the chain (no ``seq``, or beyond the head) is."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from flask import g, has_request_context
from sqlalchemy import JSON, BigInteger, Integer, String, select, text
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

GENESIS = "0" * 64
#: what a record's hash covers (with the previous record's hash)
CONTENT = ("seq", "at", "event", "outcome", "id_nat", "client_id", "address", "request_id",
           "detail")


class AuditEvent(db.Model):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(60), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    id_nat: Mapped[str | None] = mapped_column(String(40), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    def content(self) -> dict:
        return {name: getattr(self, name) for name in CONTENT}


class AuditHead(db.Model):
    """The chain's end (``seq``, ``last_hash``), its anchor after a purge, and the flag the
    triggers check before letting a DELETE through."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    anchor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    purging: Mapped[int] = mapped_column(Integer, default=0)


def chain_hash(prev_hash: str, content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def record(event: str, outcome: str = "success", *, id_nat=None, client_id=None, **detail):
    """Add an audit record to the current transaction (the caller commits)."""
    _append([_entry(event, outcome, id_nat, client_id, detail)])


#: anonymous failures are written once per source network, event and reason in this window
AGGREGATE_WINDOW = 60
_AGGREGATE = "audit"


def record_throttled(event: str, outcome: str = "failure", **detail) -> None:
    """An event anyone can cause anonymously, as often as they like (a card login without
    a card, a self-signed certificate…): the first of each minute per source network
    (IPv4 /24, IPv6 /64), event and reason is written with its detail; the others are only
    counted, and ``flush_aggregates`` (housekeeping) writes one ``audit.aggregated`` record
    with the count for that minute. The trail records attacks without being an amplifier."""
    from . import ratelimit
    from .net import address_prefix, client_address

    key = f"{event}|{detail.get('reason', '')}|{address_prefix(client_address())}"
    if ratelimit.count(_AGGREGATE, key, AGGREGATE_WINDOW) == 1:
        record(event, outcome, aggregated_per_seconds=AGGREGATE_WINDOW, **detail)


def flush_aggregates(current: int) -> int:
    """One ``audit.aggregated`` record per finished window whose events were more than the
    one already written; returns how many records were written."""
    from .ratelimit import RateCounter

    rows = db.session.scalars(select(RateCounter).where(
        RateCounter.key.like(_AGGREGATE + ":%"), RateCounter.expires_at <= current,
        RateCounter.count > 1)).all()
    subjects = []
    for row in rows:
        scope, _, start = row.key[len(_AGGREGATE) + 1:].rpartition(":")
        event, reason, source = (scope.split("|") + ["", ""])[:3]
        subjects.append((None, {"event": event, "reason": reason, "source": source,
                                "window_start": int(start) if start.isdigit() else None,
                                "seconds": AGGREGATE_WINDOW, "count": row.count,
                                "not_recorded_one_by_one": row.count - 1}))
        db.session.delete(row)
    record_many("audit.aggregated", subjects, outcome="failure")
    db.session.commit()
    return len(subjects)


def record_many(event: str, subjects: Iterable[tuple[str | None, dict]],
                outcome: str = "success") -> None:
    """One record per ``(id_nat, detail)``, appended together (bulk operations: the chain
    head is taken once)."""
    _append([_entry(event, outcome, id_nat, None, detail) for id_nat, detail in subjects])


def _entry(event, outcome, id_nat, client_id, detail) -> AuditEvent:
    from .net import client_address

    return AuditEvent(
        at=int(time.time()), event=event, outcome=outcome, id_nat=id_nat,
        client_id=client_id, address=client_address(),
        request_id=g.get("request_id") if has_request_context() else None, detail=detail)


def _append(entries: list[AuditEvent]) -> None:
    if not entries:
        return
    row = db.session.execute(text(
        "UPDATE audit_head SET seq = seq + :n WHERE id = 1 RETURNING seq, last_hash"),
        {"n": len(entries)}).first()
    if row is None:
        raise RuntimeError("audit_head is missing: run 'psc-idp db upgrade'")
    last, prev = row
    for seq, entry in enumerate(entries, last - len(entries) + 1):
        entry.seq, entry.prev_hash = seq, prev
        entry.hash = prev = chain_hash(prev, entry.content())
    db.session.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": prev})
    db.session.add_all(entries)


@dataclass
class Verification:
    ok: bool
    checked: int
    problem: str = ""


def verify(batch: int = 5000) -> Verification:
    """Walk the chain from its anchor: contiguous ``seq``, each hash recomputed, the last
    equal to the head, no record outside the chain. Reads one snapshot (its own
    connection), so that records appended meanwhile do not count as tampering."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:  # the driver would not open a transaction for reads: one snapshot
            conn.exec_driver_sql("BEGIN")
        try:
            return _verify(conn, batch)
        finally:
            conn.rollback()


def _verify(conn, batch: int) -> Verification:
    table = AuditEvent.__table__
    head = conn.execute(select(AuditHead.__table__).where(AuditHead.id == 1)).one()
    stray = conn.execute(select(table.c.id).where(table.c.seq.is_(None))
                         .order_by(table.c.id).limit(1)).scalar()
    if stray is not None:
        return Verification(False, 0, f"record id {stray} is outside the chain (no seq)")
    expected_seq, prev, checked = head.anchor_seq + 1, head.anchor_hash, 0
    rows = conn.execution_options(yield_per=batch).execute(
        select(table).order_by(table.c.seq))
    try:
        for entry in rows.mappings():
            problem = _problem(entry, expected_seq, prev, head.seq)
            if problem:
                return Verification(False, checked, problem)
            prev, expected_seq, checked = entry["hash"], expected_seq + 1, checked + 1
    finally:
        rows.close()
    if expected_seq - 1 != head.seq or prev != head.last_hash:
        return Verification(False, checked, f"the chain ends at seq {expected_seq - 1} but the "
                                            f"head says {head.seq}: records were removed")
    return Verification(True, checked)


def _problem(entry, expected_seq: int, prev: str, head_seq: int) -> str | None:
    where = f"seq {entry['seq']} (id {entry['id']})"
    if entry["seq"] > head_seq:
        return f"record {where} is beyond the chain's head (seq {head_seq})"
    if entry["seq"] != expected_seq:
        return f"record seq {expected_seq} is missing (found {where})"
    content = {name: entry[name] for name in CONTENT}
    if entry["prev_hash"] != prev or chain_hash(prev, content) != entry["hash"]:
        return f"record {where} was altered"
    return None


def purge(before: int) -> int:
    """Delete the records older than ``before`` (epoch seconds), keeping the chain verifiable:
    the anchor moves to the last deleted record."""
    last = db.session.execute(select(AuditEvent.seq, AuditEvent.hash).where(
        AuditEvent.at < before).order_by(AuditEvent.seq.desc()).limit(1)).first()
    if last is None:
        return 0
    db.session.execute(text("UPDATE audit_head SET purging = 1, anchor_seq = :s, "
                            "anchor_hash = :h WHERE id = 1"), {"s": last.seq, "h": last.hash})
    deleted = db.session.execute(text("DELETE FROM audit_event WHERE seq <= :s"),
                                 {"s": last.seq}).rowcount
    db.session.execute(text("UPDATE audit_head SET purging = 0 WHERE id = 1"))
    record("audit.purged", actor="cli", records=deleted, through_seq=last.seq)
    db.session.commit()
    return deleted
