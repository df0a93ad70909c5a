"""How a phone waiting on the channel (``channel``) learns that a login request for its
professional exists, whichever process created it: the database is the only shared state.

- PostgreSQL: the transaction that creates a real request also sends ``NOTIFY`` on
  ``CHANNEL`` with the idNat (``announce``; delivered when it commits, never if it rolls
  back), and each channel process keeps one connection ``LISTEN``-ing (``Listener``);
- both databases: the channel also asks the database which of its waiting idNats have a live
  request (``with_pending``), every half second on SQLite (one machine, no NOTIFY), every few
  seconds on PostgreSQL as a safety net (a request created by a process that does not
  announce, e.g. an older version during a rolling upgrade; notifications missed while the
  listening connection was being re-established)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from sqlalchemy import select, text

from ..clock import now
from ..extensions import db
from .models import LoginRequest

log = logging.getLogger("psc_idp.ecps")

CHANNEL = "psc_idp_ecps_pending"
_BATCH = 500  # idNats per query of with_pending (bound parameters)


def is_postgres(engine) -> bool:
    return engine.dialect.name == "postgresql"


def announce(id_nat: str) -> None:
    """Ring the phones of ``id_nat`` when the current transaction commits (PostgreSQL; on
    SQLite the channel's periodic check finds the request)."""
    if is_postgres(db.session.get_bind()):
        db.session.execute(text("SELECT pg_notify(:channel, :id_nat)"),
                           {"channel": CHANNEL, "id_nat": id_nat})


def with_pending(id_nats: Iterable[str]) -> set[str]:
    """Which of ``id_nats`` have a live request a phone would be shown."""
    wanted, found = sorted(set(id_nats)), set()
    for start in range(0, len(wanted), _BATCH):
        found.update(db.session.scalars(select(LoginRequest.id_nat).distinct().where(
            LoginRequest.id_nat.in_(wanted[start:start + _BATCH]),
            LoginRequest.real.is_(True), LoginRequest.status == "pending",
            LoginRequest.expires_at >= now())))
    db.session.rollback()
    return found


class Listener:
    """One PostgreSQL connection of this process ``LISTEN``-ing on ``CHANNEL``, in a thread
    of its own (not one per phone): ``on_ring(id_nat)`` for each notification,
    ``on_connected()`` after each (re)connection (anything sent meanwhile was missed)."""

    RETRY = 1.0   # seconds between reconnection attempts
    TICK = 1.0    # seconds between checks of ``stop``

    def __init__(self, app, on_ring: Callable[[str], None], on_connected: Callable[[], None]):
        self.app, self.on_ring, self.on_connected = app, on_ring, on_connected
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="psc-idp e-CPS listener")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self.TICK + 5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # the database went away: listen again when it is back
                log.warning("e-CPS channel: listening connection lost (%s: %s), "
                            "reconnecting", type(exc).__name__, exc)
                self._stopping.wait(self.RETRY)

    def _listen(self) -> None:
        with self.app.app_context():
            pooled = db.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # ours for good: closed below, never returned to the pool
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self.on_connected()
            while not self._stopping.is_set():
                for notification in connection.notifies(timeout=self.TICK):
                    self.on_ring(notification.payload)
        finally:
            pooled.close()
