"""The audit trail: one durable record per authentication, token issuance, refresh,
revocation, logout, e-CPS change and admin action, written in the caller's transaction —
the record commits with the action or not at all. Never a secret, code, token or PIN.

**Appending takes no shared lock.** A record is one INSERT: it gets its number ``seq`` from
a sequence (PostgreSQL) or as the next number under SQLite's one write lock, increasing in
the order records are written (on PostgreSQL with gaps where a transaction rolled back).
No row is shared by two writers, so transactions in any number of threads, processes and
machines never wait on each other for the audit trail.

**Chaining happens just after commit** (``audit_sequencer``): a sequencer links every
committed record not yet chained, in ``seq`` order, giving it its place ``chain_seq``
(1, 2, 3… without gaps), the previous record's hash and its own hash over its content and
that previous hash; ``audit_head`` holds the chain's end. One sequencer at a time across the
cluster (a transaction-level advisory lock on PostgreSQL, SQLite's write lock, and a
compare-and-set on ``audit_head`` on both), in each serving process's background thread
every ``audit_chain_interval`` seconds and in ``psc-idp housekeeping``. A record whose
transaction commits after records written later were chained (a late commit) is simply
chained in a later round: the chain's order is the order records became visible, and
nothing committed is ever skipped, since the sequencer takes whatever is not chained.

**Checkpoints.** Every ``audit_checkpoint_records`` records or ``audit_checkpoint_interval``
seconds the sequencer signs the chain's head — "record ``chain_seq`` N has hash H, and the
checkpoint before this one was for ``chain_seq`` P", a JWS made through the key ring's
``Signer`` (file key or HSM) — keeps it in ``audit_checkpoint`` and notes N in
``audit_head.checkpoint_seq``; ``psc-idp audit checkpoints --export`` copies them out.

**What it guarantees.** A record commits with its action or not at all, and every
committed record is chained, whenever it commits: the sequencer takes whatever is not
chained, so a transaction that numbered its record early and commits late is chained in a
later round (the chain's order is the order records became visible, not their ``seq``).
The database refuses UPDATE and DELETE (triggers; TRUNCATE too on PostgreSQL), except the
sequencer's one UPDATE that fills an unchained record's chain fields and changes nothing
else, and the DELETE of ``psc-idp audit purge``, which keeps an anchor (the hash the first
remaining record chains from). ``verify`` (``psc-idp audit verify``) reads one snapshot and
fails, naming the first problem in one line, when a chained record was edited, removed or
inserted; when the chain does not end at the head; when a stored checkpoint's signature or
columns do not verify, or the chain no longer matches it; when a stored checkpoint is
missing (each names the one before it, the head names the newest); when the chain does not
match a checkpoint file given (``--checkpoint``); and when records stay unchained longer
than ``audit_unchained_alert`` or chained records no checkpoint covers for longer than
``audit_checkpoint_interval`` plus that delay.

Someone with write access to the database who lifts the triggers can still:

- edit, remove or add records not yet chained (the seconds after their commit), or stop the
  sequencer — records left unchained longer than ``audit_unchained_alert`` make ``verify``
  fail;
- rewrite the chain from some point on, recomputing every hash, the head and the anchor,
  and delete the stored checkpoints after that point and their mention in the head: they
  cannot sign new ones, so ``verify`` fails once the chained records no checkpoint covers
  are older than ``audit_checkpoint_interval`` + ``audit_unchained_alert`` — unless they
  also remove every record since. That complete rewrite is caught only by a checkpoint
  exported beforehand (``verify --checkpoint FILE``): its record no longer has its hash, or
  it lies beyond the rewritten head, or before an anchor moved within the retention period.

Records chained up to an exported checkpoint cannot be altered, removed or reordered
without ``verify --checkpoint`` failing; records after it are protected by the chain and
the stored checkpoints only."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable

from flask import g, has_request_context
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

#: every event the code records, with what it means: the one list ``psc-idp audit export
#: --event`` accepts and documents (tests/test_cli.py checks each record call against it)
EVENTS = {
    "login": "a card or e-CPS login (outcome failure: refused card, with its reason)",
    "login.abandoned": "the professional went back to the application without signing in",
    "logout": "a single sign-on session ended, its tokens revoked",
    "logout.backchannel.delivered": "a client accepted the logout token of an ended session",
    "logout.backchannel.failed": "a client's logout token given up (client gone, or no 2xx "
                                 "answer for 24 hours)",
    "ciba.requested": "a client asked for a decoupled login (CIBA; outcome failure: a decoy, "
                      "the professional cannot be asked)",
    "ciba.approved": "the professional approved a CIBA request (channel in the detail)",
    "ciba.denied": "a CIBA request refused by the professional, or a wrong code picked",
    "ciba.ping.delivered": "a ping-mode client accepted the notification of a decided CIBA "
                           "request",
    "ciba.ping.failed": "a CIBA notification given up (client gone, or no 2xx answer "
                        "before the request expired)",
    "session.revoked": "an administrator ended a practitioner's session from the console",
    "authorization.pushed": "a client pushed an authorization request (RFC 9126)",
    "token.issued": "tokens issued by the token endpoint (grant type in the detail)",
    "token.exchanged": "a professional's access token exchanged for a certificate-bound one "
                       "for an API (RFC 8693; audience and the subject's client in the "
                       "detail)",
    "token.revoked": "an access token revoked by its client (RFC 7009)",
    "tokens.revoked": "a grant's tokens revoked (refresh token revoked or reused)",
    "client.created": "a relying party registered",
    "client.updated": "a relying party's metadata changed",
    "client.secret_rotated": "a relying party got a new secret",
    "client.enabled": "a relying party enabled again",
    "client.disabled": "a relying party disabled",
    "client.deleted": "a relying party deleted",
    "access_key.issued": "an admin API token or initial access token issued",
    "access_key.revoked": "an admin API token or initial access token revoked",
    "console.refused": "a card holder who is not an administrator tried the console",
    "ecps.activation.started": "an e-CPS activation started (QR code or SMS/e-mail codes)",
    "ecps.activation": "wrong e-CPS activation codes submitted",
    "ecps.device.activated": "an e-CPS device activated",
    "ecps.device.revoked": "an e-CPS device revoked",
    "ecps.login.requested": "an e-CPS login request sent to the phone (or a decoy)",
    "ecps.login.approved": "an e-CPS login approved on the phone (failure: wrong code)",
    "ecps.login.cancelled": "an e-CPS login request cancelled on the login page",
    "ecps.login.denied": "an e-CPS login denied on the phone",
    "ecps.throttled": "a network's e-CPS requests for an idNat stop reaching the phone",
    "ecps.rate_limited": "an e-CPS rate limit reached",
    "ciba.card.listed": "a CPS card listed its pending CIBA requests (psc-card)",
    "ciba.card.refused": "a CIBA card call refused: card, signature, request or too late (the "
                         "decision itself is ciba.approved or ciba.denied)",
    "ciba.card.rate_limited": "the CIBA card channel's rate limit reached",
    "directory.imported": "a directory extract imported",
    "directory.synced": "a complete directory extract applied (failure: safeguard)",
    "directory.linked": "a former idNat linked to its successor",
    "directory.deactivated": "a practitioner absent from the complete extract deactivated",
    "audit.aggregated": "anonymous failures counted in one record per minute and network",
    "audit.purged": "records older than the retention period deleted",
}

GENESIS = "0" * 64
#: what a record's hash covers (with the previous record's hash)
CONTENT = ("seq", "at", "event", "outcome", "id_nat", "client_id", "address", "request_id",
           "detail")
#: the numbers of records on PostgreSQL (SQLite: the next number under its write lock)
NUMBERS = Sequence("audit_event_seq")


class AuditEvent(db.Model):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_chain_seq", "chain_seq", unique=True),
        # the records the sequencer has still to chain, in order
        Index("ix_audit_event_unchained", "seq", postgresql_where=text("hash IS NULL"),
              sqlite_where=text("hash IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, NUMBERS, unique=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(60), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    id_nat: Mapped[str | None] = mapped_column(String(40), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    # filled once by the sequencer
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    def content(self) -> dict:
        return {name: getattr(self, name) for name in CONTENT}


class AuditHead(db.Model):
    """The chain's end (``seq``: its last ``chain_seq``, ``last_hash``), its anchor after a
    purge, the ``chain_seq`` of the newest checkpoint, and the flag the triggers check
    before letting a DELETE through. Only the sequencer and the purge write it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    anchor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    checkpoint_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    purging: Mapped[int] = mapped_column(Integer, default=0)


class AuditCheckpoint(db.Model):
    """A signed statement of the chain's head: ``token`` is a JWS whose claims say that the
    record at ``chain_seq`` has ``hash`` and that the checkpoint before it vouched for
    ``prev_seq`` (``audit_checkpoint``); the columns repeat them."""

    __tablename__ = "audit_checkpoint"

    chain_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    prev_seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[int] = mapped_column(BigInteger)
    kid: Mapped[str] = mapped_column(String(100))
    token: Mapped[str] = mapped_column(Text)


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
    """One record per ``(id_nat, detail)`` (bulk operations)."""
    _append([_entry(event, outcome, id_nat, None, detail) for id_nat, detail in subjects])


def _entry(event, outcome, id_nat, client_id, detail) -> AuditEvent:
    from .net import client_address

    return AuditEvent(
        at=int(time.time()), event=event, outcome=outcome, id_nat=id_nat,
        client_id=client_id, address=client_address(),
        request_id=g.get("request_id") if has_request_context() else None, detail=detail)


def _append(entries: list[AuditEvent]) -> None:
    """INSERTs only. SQLite has no sequences: each record's INSERT reads the highest number
    itself, under the write lock that statement takes before reading (one writer at a time
    on SQLite anyway), so two writers never take the same number."""
    if not entries:
        return
    if db.session.get_bind().dialect.name == "sqlite":
        for entry in entries:
            entry.seq = select(func.coalesce(func.max(AuditEvent.seq), 0) + 1) \
                .scalar_subquery()
    db.session.add_all(entries)


def purge(before: int) -> int:
    """Delete the chained records older than ``before`` (epoch seconds) and the checkpoints
    before them, keeping the rest verifiable: the anchor moves to the last deleted record.
    Records not yet chained are kept. The ``audit.purged`` record is written first, so the
    numbers of the remaining records go on from the highest ever given."""
    from .audit_sequencer import take_turn_waiting

    take_turn_waiting()  # no sequencer round meanwhile
    last = db.session.execute(select(AuditEvent.chain_seq, AuditEvent.hash).where(
        AuditEvent.at < before, AuditEvent.chain_seq.is_not(None))
        .order_by(AuditEvent.chain_seq.desc()).limit(1)).first()
    if last is None:
        db.session.rollback()
        return 0
    count = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.chain_seq <= last.chain_seq))
    record("audit.purged", actor="cli", records=count, through_seq=last.chain_seq)
    db.session.flush()
    db.session.execute(text("UPDATE audit_head SET purging = 1, anchor_seq = :s, "
                            "anchor_hash = :h WHERE id = 1"),
                       {"s": last.chain_seq, "h": last.hash})
    deleted = db.session.execute(text("DELETE FROM audit_event WHERE chain_seq <= :s"),
                                 {"s": last.chain_seq}).rowcount
    db.session.execute(text("DELETE FROM audit_checkpoint WHERE chain_seq < :s"),
                       {"s": last.chain_seq})
    db.session.execute(text("UPDATE audit_head SET purging = 0 WHERE id = 1"))
    db.session.commit()
    return deleted


def verify(batch: int = 5000, checkpoints: Iterable[dict] = ()):
    """Check the chain (``audit_verify.verify``): kept here, where callers look for it."""
    from .audit_verify import verify as run

    return run(batch, list(checkpoints))
