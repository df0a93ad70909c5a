"""Housekeeping: delete what has expired (codes, login transactions, e-CPS requests and
activations, replay caches, rate counters, dead tokens and sessions) in small batches, each
its own short transaction, so the hot tables are never locked for long and stay bounded.
Run it every few minutes (``psc-idp housekeeping``, a systemd timer in config/systemd). It
also runs an audit sequencer round: records written while no server runs get chained."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import and_, delete, exists, or_, select, tuple_

from . import audit, audit_sequencer
from .admin.models import AccessKey
from .ciba import ping as ciba_ping
from .ciba.models import CibaRequest
from .ecps.models import Activation, LoginRequest
from .extensions import db
from .oidc import backchannel, revocation
from .oidc.models import (
    AssertionJti,
    AuthorizationCode,
    BackchannelLogout,
    DPoPJti,
    LoginSession,
    LoginTransaction,
    Token,
    now,
)
from .oidc.par import PushedRequest
from .ratelimit import RateCounter

#: keep expired rows this long for investigations (seconds)
KEEP = 3600


def expired_rows(current: int) -> list[tuple[str, object, object]]:
    """(name, model, condition) for every kind of expired row."""
    cutoff = current - KEEP
    return [
        ("authorization codes", AuthorizationCode, AuthorizationCode.expires_at < cutoff),
        ("login transactions", LoginTransaction, LoginTransaction.expires_at < cutoff),
        ("e-CPS login requests", LoginRequest, LoginRequest.expires_at < cutoff),
        ("e-CPS activations", Activation, Activation.expires_at < cutoff),
        ("CIBA requests", CibaRequest, CibaRequest.expires_at < cutoff),
        ("assertion jtis", AssertionJti, AssertionJti.expires_at < current),
        ("DPoP proof jtis", DPoPJti, DPoPJti.expires_at < current),
        ("pushed authorization requests", PushedRequest, PushedRequest.expires_at < current),
        ("rate counters", RateCounter, RateCounter.expires_at < current),
        # a rotated refresh token is kept until it would have expired: presenting it again
        # must still be recognised as reuse and revoke the chain; and while its session
        # lives, it names a client that gets the session's back-channel logout
        ("tokens", Token, and_(Token.access_expires_at < cutoff, or_(
            Token.refresh_expires_at.is_(None), Token.refresh_expires_at < cutoff),
            ~exists().where(LoginSession.sid == Token.sid, LoginSession.ended_at.is_(None)))),
        ("sessions", LoginSession, or_(LoginSession.expires_at < cutoff,
                                        LoginSession.ended_at < cutoff)),
        ("access keys", AccessKey, AccessKey.expires_at < cutoff - 30 * 86400),
        ("finished back-channel logouts", BackchannelLogout, and_(
            BackchannelLogout.status != "pending", BackchannelLogout.done_at < cutoff)),
    ]


def end_expired_sessions(batch: int, current: int) -> int:
    """Sessions past their expiry end as a logout does (``revocation.end_sessions``: their
    clients get a back-channel logout), batch after batch."""
    total = 0
    while True:
        sids = db.session.scalars(select(LoginSession.sid).where(
            LoginSession.ended_at.is_(None), LoginSession.expires_at < current)
            .limit(batch)).all()
        if not sids:
            db.session.rollback()
            return total
        ended, _ = revocation.end_sessions(LoginSession.sid.in_(sids), current)
        db.session.commit()
        total += len(ended)
        if len(sids) < batch:
            return total


def purge(batch: int = 1000, current: int | None = None) -> dict[str, int]:
    current = current or now()
    counts = {"aggregated audit records": audit.flush_aggregates(current),
              "expired sessions": end_expired_sessions(batch, current)}
    for name, model, condition in expired_rows(current):
        key = list(model.__table__.primary_key.columns)
        total = 0
        while True:
            rows = db.session.execute(select(*key).where(condition).limit(batch)).all()
            if not rows:
                break
            db.session.execute(delete(model).where(tuple_(*key).in_(
                [tuple(row) for row in rows])))
            db.session.commit()
            total += len(rows)
            if len(rows) < batch:
                break
        counts[name] = total
    counts["audit records chained"] = audit_sequencer.run_once(current).chained
    sent = backchannel.run_once(current)
    counts["back-channel logouts"] = sent["delivered"] + sent["failed"]
    pinged = ciba_ping.run_once(current)
    counts["CIBA pings"] = pinged["delivered"] + pinged["failed"]
    return counts


@click.command("housekeeping")
@click.option("--batch", default=1000, show_default=True, help="rows per transaction")
@with_appcontext
def housekeeping_cli(batch: int):
    """Delete expired codes, tokens, sessions, e-CPS requests and caches."""
    verbs = {"aggregated audit records": "written", "audit records chained": "",
             "expired sessions": "ended", "back-channel logouts": "sent or given up",
             "CIBA pings": "sent or given up"}
    for name, count in purge(batch).items():
        click.echo(f"{name}: {count} {verbs.get(name, 'deleted')}".rstrip())
