"""Verification of the audit trail (``psc-idp audit verify``): the chain walked from its
anchor on one snapshot, checked against its head, the stored checkpoints and any exported
ones, and the alerts that are not tampering by themselves: records left unchained, a chain
no checkpoint covers."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from .audit import CONTENT, AuditCheckpoint, AuditEvent, AuditHead, chain_hash
from .audit_checkpoint import Checkpoint, CheckpointError, Reader
from .extensions import db
from .settings import current as settings


@dataclass
class Verification:
    ok: bool  # no sign of tampering
    checked: int  # chained records checked
    problem: str = ""
    checkpoints: int = 0  # checkpoints the chain was found to match
    pending: int = 0  # records not chained yet
    alerts: list[str] = field(default_factory=list)  # operational: see ``audit``


def verify(batch: int = 5000, given: list[Checkpoint] = ()) -> Verification:
    """Walk the chain from its anchor: contiguous ``chain_seq``, each hash recomputed, the
    last equal to the head, every checkpoint matched, no record outside the chain. Reads
    one snapshot (its own connection), so that records chained meanwhile do not count as
    tampering. ``given``: checkpoints from exported files (``Reader.line``)."""
    now, reader = int(time.time()), Reader()
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:  # the driver would not open a transaction for reads: one snapshot
            conn.exec_driver_sql("BEGIN")
        try:
            return _verify(conn, batch, reader, list(given), now)
        finally:
            conn.rollback()


def _verify(conn, batch: int, reader: Reader, given: list[Checkpoint],
            now: int) -> Verification:
    table = AuditEvent.__table__
    head = conn.execute(select(AuditHead.__table__).where(AuditHead.id == 1)).one()
    stray = conn.execute(select(table.c.id).where(or_(
        table.c.chain_seq.is_(None) & (table.c.hash.is_not(None) |
                                       table.c.prev_hash.is_not(None)),
        table.c.chain_seq.is_not(None) & table.c.hash.is_(None)))
        .order_by(table.c.id).limit(1)).scalar()
    if stray is not None:
        return Verification(False, 0, f"record id {stray} is outside the chain")
    try:
        expected, matched, problem = _checkpoints(conn, head, reader, given, now)
    except CheckpointError as exc:
        return Verification(False, 0, str(exc))
    if problem:
        return Verification(False, 0, problem)
    expected_seq, prev, checked = head.anchor_seq + 1, head.anchor_hash, 0
    rows = conn.execution_options(yield_per=batch).execute(
        select(table).where(table.c.chain_seq.is_not(None)).order_by(table.c.chain_seq))
    try:
        for entry in rows.mappings():
            problem = _problem(entry, expected_seq, prev, head.seq) or \
                _unmatched(entry, expected.get(entry["chain_seq"], ()))
            if problem:
                return Verification(False, checked, problem)
            matched += len(expected.get(entry["chain_seq"], ()))
            prev, expected_seq, checked = entry["hash"], expected_seq + 1, checked + 1
    finally:
        rows.close()
    if expected_seq - 1 != head.seq or prev != head.last_hash:
        return Verification(False, checked, f"the chain ends at seq {expected_seq - 1} but the "
                                            f"head says {head.seq}: records were removed")
    pending, alerts = _alerts(conn, now)
    return Verification(True, checked, "", matched, pending, alerts)


def _problem(entry, expected_seq: int, prev: str, head_seq: int) -> str | None:
    where = f"seq {entry['chain_seq']} (id {entry['id']})"
    if entry["chain_seq"] > head_seq:
        return f"record {where} is beyond the chain's head (seq {head_seq})"
    if entry["chain_seq"] != expected_seq:
        return f"record seq {expected_seq} is missing (found {where})"
    content = {name: entry[name] for name in CONTENT}
    if entry["prev_hash"] != prev or chain_hash(prev, content) != entry["hash"]:
        return f"record {where} was altered"
    return None


def _unmatched(entry, checkpoints) -> str | None:
    for checkpoint in checkpoints:
        if checkpoint.hash != entry["hash"]:
            return (f"record seq {entry['chain_seq']} (id {entry['id']}) is not the one "
                    f"{checkpoint.origin} (signed {_date(checkpoint.at)}) vouches for: the "
                    "chain was rewritten")
    return None


def _checkpoints(conn, head, reader: Reader, given: list[Checkpoint], now: int):
    """The checkpoints to meet while walking, by ``chain_seq``; those at the anchor checked
    here; a problem when one lies beyond the head, or was purged past too early."""
    rows = conn.execute(select(AuditCheckpoint.__table__)
                        .order_by(AuditCheckpoint.chain_seq)).all()
    problem = _missing(rows, head)
    if problem:
        return {}, 0, problem
    stored = [reader.row(row) for row in rows]
    keep = settings().audit_retention_days * 86400
    expected, matched = {}, 0
    for checkpoint in [c for c in stored if c is not None] + given:
        signed = f"{checkpoint.origin} (signed {_date(checkpoint.at)})"
        if checkpoint.chain_seq > head.seq:
            return {}, 0, (f"{signed} vouches for record seq {checkpoint.chain_seq}, beyond "
                           f"the chain's head (seq {head.seq}): records were removed")
        if checkpoint.chain_seq == head.anchor_seq:
            if checkpoint.hash != head.anchor_hash:
                return {}, 0, (f"the anchor (seq {head.anchor_seq}) is not the record "
                               f"{signed} vouches for: the chain was rewritten")
            matched += 1
        elif checkpoint.chain_seq < head.anchor_seq:
            if checkpoint.at > now - keep:
                return {}, 0, (f"the chain was purged through seq {head.anchor_seq}, past "
                               f"{signed}, within the retention period")
        else:
            expected.setdefault(checkpoint.chain_seq, []).append(checkpoint)
    return expected, matched, ""


def _missing(rows, head) -> str | None:
    """A stored checkpoint deleted: each names the one before it (``prev_seq``, signed), the
    first one kept names one before the anchor (purged) or none, and the head names the
    newest."""
    newest = rows[-1].chain_seq if rows else 0
    if newest != head.checkpoint_seq and (rows or head.checkpoint_seq >= head.anchor_seq):
        return (f"the newest checkpoint is for seq {head.checkpoint_seq} (the head says so), "
                f"the newest stored for seq {newest}: checkpoints were deleted")
    for before, row in zip([None, *rows], rows, strict=False):
        if before is None and row.prev_seq and row.prev_seq >= head.anchor_seq or \
                before is not None and row.prev_seq != before.chain_seq:
            return (f"the checkpoint for seq {row.prev_seq} is missing (stored checkpoint "
                    f"{row.chain_seq} follows it): checkpoints were deleted")
    return None


def _alerts(conn, now: int) -> tuple[int, list[str]]:
    """Records waiting longer than ``audit_unchained_alert`` (no sequencer running?), and
    chained records no checkpoint has covered for longer than ``audit_checkpoint_interval``
    plus that delay (the signing key unavailable, or checkpoints deleted)."""
    config, table, alerts = settings(), AuditEvent.__table__, []
    pending, oldest = conn.execute(select(func.count(), func.min(table.c.at))
                                   .where(table.c.hash.is_(None))).one()
    if pending and oldest < now - config.audit_unchained_alert:
        late = conn.scalar(select(func.count()).where(
            table.c.hash.is_(None), table.c.at < now - config.audit_unchained_alert))
        alerts.append(f"{late} record(s) unchained for more than {config.audit_unchained_alert}"
                      f" s (the oldest written {_date(oldest)}): is a sequencer running?")
    covered = conn.scalar(select(func.max(AuditCheckpoint.chain_seq))) or 0
    uncovered = conn.scalar(select(func.min(table.c.at)).where(table.c.chain_seq > covered))
    limit = config.audit_checkpoint_interval + config.audit_unchained_alert
    if uncovered is not None and uncovered < now - limit:
        alerts.append(f"records chained after the last checkpoint (seq {covered}) were "
                      f"written as early as {_date(uncovered)}: no checkpoint for more than "
                      f"{limit} s (signing key unavailable? checkpoints deleted?)")
    return pending, alerts


def _date(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
