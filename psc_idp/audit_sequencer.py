"""The audit sequencer: links committed audit records into the hash chain just after their
commit, in order, one sequencer at a time across the cluster, and signs checkpoints of the
chain's head (the design and its guarantees: ``audit``).

Every serving process runs one in a daemon thread (``psc-idp run``; gunicorn's
``post_fork``, and ``psc_idp.wsgi`` at a process's first request under any WSGI server),
a round every ``audit_chain_interval`` seconds, stopped with the listeners or at gunicorn's
``worker_exit``; ``psc-idp housekeeping`` runs one round too. A round takes its turn
without waiting — on PostgreSQL a transaction-level advisory lock
(``pg_try_advisory_xact_lock``): a process that does not get it skips the round, and
nothing outlives a transaction, so a process that dies, hangs between rounds or loses its
network hands over at once; on SQLite its one write lock. Both also move the head with a
compare-and-set, so two rounds can never both extend the chain. The thread
survives database and HSM outages: one warning when rounds start failing, one line when
they work again."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import bindparam, func, select, update

from . import audit_checkpoint, workers
from .audit import CONTENT, AuditCheckpoint, AuditEvent, AuditHead, chain_hash
from .extensions import db, idp
from .keys.signer import KeyUnavailable

log = logging.getLogger("psc_idp.audit")

#: the PostgreSQL advisory lock of the sequencer's turn ("pscaudit")
LOCK_KEY = int.from_bytes(b"pscaudit", "big")
BATCH = 1000  # records chained per transaction


@dataclass
class Round:
    chained: int = 0
    checkpoint: int | None = None  # the chain_seq a new checkpoint vouches for


def run_once(now: int | None = None) -> Round:
    """Chain every committed record not chained yet, then sign a checkpoint if one is
    due. Does nothing while another sequencer has the turn."""
    chained = chain_pending()
    try:
        return Round(chained, checkpoint_if_due(now))
    except KeyUnavailable as exc:  # the chain goes on; the checkpoint waits for the key
        log.warning("audit checkpoint not signed: %s", exc)
        return Round(chained)


def chain_pending(stop: threading.Event | None = None) -> int:
    """Chain batch after batch until none is left (or ``stop`` is set)."""
    chained = 0
    while True:
        count = chain_batch(BATCH)
        chained += count
        if count < BATCH or stop is not None and stop.is_set():
            return chained


def chain_batch(limit: int = BATCH) -> int:
    """Chain up to ``limit`` records in ``seq`` order, in one transaction."""
    session = db.session
    try:
        if not take_turn():
            session.rollback()
            return 0
        table = AuditEvent.__table__
        head = session.execute(select(AuditHead.seq, AuditHead.last_hash)
                               .where(AuditHead.id == 1)).one()
        rows = session.execute(select(table).where(table.c.hash.is_(None))
                               .order_by(table.c.seq).limit(limit)).mappings().all()
        if not rows:
            session.rollback()
            return 0
        position, prev, links = head.seq, head.last_hash, []
        for row in rows:
            position += 1
            digest = chain_hash(prev, {name: row[name] for name in CONTENT})
            links.append({"row_id": row["id"], "pos": position, "prev": prev,
                          "digest": digest})
            prev = digest
        moved = session.execute(update(AuditHead).where(
            AuditHead.id == 1, AuditHead.seq == head.seq,
            AuditHead.last_hash == head.last_hash).values(seq=position, last_hash=prev))
        if moved.rowcount != 1:  # another round extended the chain first
            session.rollback()
            return 0
        session.connection().execute(
            update(table).where(table.c.id == bindparam("row_id"), table.c.hash.is_(None))
            .values(chain_seq=bindparam("pos"), prev_hash=bindparam("prev"),
                    hash=bindparam("digest")), links)
        session.commit()
        return len(links)
    except BaseException:
        session.rollback()
        raise


def checkpoint_if_due(now: int | None = None) -> int | None:
    """Sign the head when ``audit_checkpoint_records`` records were chained since the last
    checkpoint, or ``audit_checkpoint_interval`` seconds have passed and some were."""
    settings, now = idp().settings, now or int(time.time())
    session = db.session
    try:
        if not take_turn():
            session.rollback()
            return None
        head = session.execute(select(AuditHead.seq, AuditHead.last_hash,
                                      AuditHead.checkpoint_seq)
                               .where(AuditHead.id == 1)).one()
        last = session.scalar(select(AuditCheckpoint.at)
                              .where(AuditCheckpoint.chain_seq == head.checkpoint_seq))
        done = head.checkpoint_seq
        if head.seq <= done or last is not None and \
                head.seq - done < settings.audit_checkpoint_records and \
                now - last < settings.audit_checkpoint_interval:
            session.rollback()
            return None
        session.add(audit_checkpoint.sign(head.seq, head.last_hash, done, now))
        session.execute(update(AuditHead).where(AuditHead.id == 1)
                        .values(checkpoint_seq=head.seq))
        session.commit()
        return head.seq
    except BaseException:
        session.rollback()
        raise


def take_turn() -> bool:
    """The sequencer's turn for this transaction, without waiting (PostgreSQL); SQLite
    serialises writers itself."""
    if db.session.get_bind().dialect.name != "postgresql":
        return True
    return bool(db.session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))))


def take_turn_waiting() -> None:
    """The turn, waiting for a round under way (the purge)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))


class Sequencer(workers.Worker):
    """The background thread of one process."""

    log = log
    label = "audit sequencer"

    def round(self) -> None:
        if self.step("chaining", lambda: chain_pending(self._stop)) is not None:
            self.step("checkpoint", checkpoint_if_due)


_EXTENSION = "psc_idp.audit_sequencer"


def start(app: Flask) -> Sequencer | None:
    """Start this process's sequencer for ``app`` (once per process: a forked worker starts
    its own); none when ``audit_chain_interval`` is 0."""
    return workers.start(app, _EXTENSION,
                         app.extensions["psc_idp"].settings.audit_chain_interval, Sequencer)


def stop(app: Flask) -> None:
    workers.stop(app, _EXTENSION)
