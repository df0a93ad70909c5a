"""The audit trail: one durable record per authentication, token issuance, refresh,
revocation, logout, e-CPS change and admin action, written in the caller's transaction —
the record commits with the action or not at all. Never a secret, code, token or PIN.

Records are hash-chained: each carries ``seq``, the hash of the previous record and its own
hash over its content and that previous hash. Appends are serialised by the one-row
``audit_head`` table, updated first thing (row lock on PostgreSQL, the write lock on
SQLite), so several processes never fork the chain. The database refuses UPDATE and DELETE on
``audit_event`` (triggers) except during ``psc-idp audit purge``, which keeps an anchor (the
hash the first remaining record chains from) so the rest still verifies."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from flask import g, has_request_context
from sqlalchemy import JSON, BigInteger, Integer, String, select, text
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

GENESIS = "0" * 64


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
        return {"seq": self.seq, "at": self.at, "event": self.event, "outcome": self.outcome,
                "id_nat": self.id_nat, "client_id": self.client_id, "address": self.address,
                "request_id": self.request_id, "detail": self.detail}


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
    from .net import client_address

    row = db.session.execute(text(
        "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, last_hash")).first()
    if row is None:
        raise RuntimeError("audit_head is missing: run 'psc-idp db upgrade'")
    seq, prev = row
    entry = AuditEvent(
        seq=seq, at=int(time.time()), event=event, outcome=outcome, id_nat=id_nat,
        client_id=client_id, address=client_address(),
        request_id=g.get("request_id") if has_request_context() else None, detail=detail,
        prev_hash=prev)
    entry.hash = chain_hash(prev, entry.content())
    db.session.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"),
                       {"h": entry.hash})
    db.session.add(entry)


@dataclass
class Verification:
    ok: bool
    checked: int
    problem: str = ""


def verify(batch: int = 5000) -> Verification:
    """Walk the chain from its anchor: contiguous ``seq``, each hash recomputed, the last
    equal to the head."""
    head = db.session.get(AuditHead, 1)
    expected_seq, prev, checked = head.anchor_seq + 1, head.anchor_hash, 0
    query = select(AuditEvent).where(AuditEvent.seq.is_not(None)).order_by(AuditEvent.seq)
    result = db.session.execute(query.execution_options(yield_per=batch))
    try:
        for entry in result.scalars():
            if entry.seq != expected_seq:
                return Verification(False, checked, f"record seq {expected_seq} is missing "
                                                    f"(found seq {entry.seq}, id {entry.id})")
            if entry.prev_hash != prev or chain_hash(prev, entry.content()) != entry.hash:
                return Verification(False, checked, f"record seq {entry.seq} (id {entry.id}) "
                                                    "was altered")
            prev, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    finally:
        result.close()
    if expected_seq - 1 != head.seq or prev != head.last_hash:
        return Verification(False, checked, f"the chain ends at seq {expected_seq - 1} but the "
                                            f"head says {head.seq}: records were removed")
    return Verification(True, checked)


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
