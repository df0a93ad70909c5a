"""Fixed-window rate limits shared by every psc-idp process through the database (the
usual limiter libraries keep counters in memory, Redis or Memcached, none of which psc-idp
runs: PostgreSQL is its only shared state)."""

from __future__ import annotations

import time

from sqlalchemy import BigInteger, Integer, String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


class RateCounter(db.Model):
    __tablename__ = "rate_counter"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


def hit(name: str, subject: str, limit: int, window: int = 600) -> bool:
    """Count one event for ``subject``; False once ``limit`` events happened in the current
    window. Commits the counter in a nested transaction (savepoint) of the caller's."""
    return count(name, subject, window) <= limit


def count(name: str, subject: str, window: int) -> int:
    """Count one event for ``subject`` in the current window; returns how many there were
    (this one included). One atomic statement in the caller's transaction."""
    now = int(time.time())
    start = now - now % window
    key = f"{name}:{subject}:{start}"[:200]
    for _ in range(2):
        result = db.session.execute(
            update(RateCounter).where(RateCounter.key == key)
            .values(count=RateCounter.count + 1).returning(RateCounter.count))
        found = result.scalar()
        if found is not None:
            return found
        try:
            with db.session.begin_nested():
                db.session.add(RateCounter(key=key, count=1, expires_at=start + window))
            return 1
        except IntegrityError:
            continue  # another process created it: count again
    return 1 << 30  # could not count: treat as over any limit


def claim(name: str, subject: str, seconds: int) -> bool:
    """Take ``subject``'s turn: True when its last turn was taken ``seconds`` ago or more
    (or never), and this one counts from now; False otherwise. A true minimum interval,
    not a window: one atomic statement in the caller's transaction (two processes never
    both get the turn)."""
    now = int(time.time())
    key = f"{name}:{subject}"[:200]
    taken = db.session.execute(
        update(RateCounter).where(RateCounter.key == key, RateCounter.expires_at <= now)
        .values(count=RateCounter.count + 1, expires_at=now + seconds)
        .returning(RateCounter.count)).scalar()
    if taken is not None:
        return True
    try:
        with db.session.begin_nested():
            db.session.add(RateCounter(key=key, count=1, expires_at=now + seconds))
        return True
    except IntegrityError:
        return False  # a live turn exists (or another process just took it)
