"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when an SSO session ends,
every client that received tokens in it and registered a ``backchannel_logout_uri`` gets a
logout token (§2.4), POSTed from the server (§2.5).

Delivery is durable: ``enqueue`` writes one outbox row per client in the transaction that
ends the session (``revocation.end_sessions``, whatever the door), and a sender delivers
it later — a daemon thread in every serving process (``start``, every
``backchannel_logout_interval`` seconds) and ``psc-idp housekeeping`` (``run_once``). A
sender claims rows with a conditional update of ``claimed_until`` (PostgreSQL and SQLite
alike): two senders never post the same row at the same time. The logout token is built at
send time (a retry an hour later still sends a fresh ``exp``); a 2xx answer is delivered;
anything else is retried after ``BACKOFF`` and given up (``failed``) ``GIVE_UP`` seconds
after the session ended. An unreachable client delays no logout and loses nothing."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests
from flask import Flask
from sqlalchemy import insert, or_, select, update

from .. import audit, workers
from ..extensions import db, idp
from ..keys import jws
from .models import BackchannelLogout, Client, Token, now
from .subject import subject_identifier

log = logging.getLogger("psc_idp.backchannel")

#: §2.4: the ``events`` member and the header's ``typ`` (§2.4, RFC 8725 §3.11)
EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TYP = "logout+jwt"
#: seconds a logout token is valid
LIFETIME = 120
#: seconds before the next attempt, after the 1st, 2nd … failure (then the last, again)
BACKOFF = (5, 30, 120, 600, 3600)
#: seconds after the session ended when an undelivered logout is given up (``failed``)
GIVE_UP = 86400
#: seconds to wait for the client's answer (§2.5 leaves it to the OP)
TIMEOUT = 5
#: rows a sender claims and posts at once, and how long its claim lasts (above TIMEOUT)
BATCH = 10
CLAIM = 120

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def enqueue(sids: list[str], current: int) -> int:
    """One outbox row per (session, client) among ``sids`` for the clients that received
    tokens in it (every code exchanged left a token row, which housekeeping keeps while
    its session lives) and registered a back-channel URI; in the caller's transaction."""
    rows = db.session.execute(
        select(Token.sid, Token.client_id, Token.id_nat).distinct()
        .join(Client, Client.client_id == Token.client_id)
        .where(Token.sid.in_(sids), Client.backchannel_logout_uri.is_not(None))).all()
    if rows:
        db.session.execute(insert(BackchannelLogout), [
            {"sid": sid, "client_id": client_id, "id_nat": id_nat, "created_at": current,
             "status": PENDING, "next_attempt_at": current, "attempts": 0}
            for sid, client_id, id_nat in rows])
    return len(rows)


def logout_token(client_id: str, alg: str, sid: str, id_nat: str) -> str:
    """§2.4: signed like the client's ID tokens, with the ID token's ``sub`` and ``sid``
    and never a ``nonce``."""
    issued = now()
    claims = {"iss": idp().settings.issuer, "aud": client_id, "iat": issued,
              "exp": issued + LIFETIME, "jti": secrets.token_urlsafe(16),
              "sub": subject_identifier(id_nat), "sid": sid, "events": {EVENT: {}}}
    return jws.encode(claims, idp().keys.signer(alg or "RS256"), typ=LOGOUT_TYP)


def run_once(current: int | None = None, stop: threading.Event | None = None) -> dict:
    """Send every due logout, batch after batch; how many were delivered, will be
    retried, failed. ``current``: the clock of the schedule (tests move it forward)."""
    counts = {DELIVERED: 0, "retry": 0, FAILED: 0}
    while stop is None or not stop.is_set():
        at = current or now()
        batch = claim(at)
        for outcome in send(batch, at) if batch else ():
            counts[outcome] += 1
        if len(batch) < BATCH:
            break
    return counts


def claim(current: int) -> list[dict]:
    """Claim up to ``BATCH`` due rows (a conditional update: a row another sender holds is
    skipped), with what sending them needs; commits."""
    table = BackchannelLogout
    free = or_(table.claimed_until.is_(None), table.claimed_until < current)
    try:
        due = db.session.scalars(select(table.id).where(
            table.status == PENDING, table.next_attempt_at <= current, free)
            .order_by(table.next_attempt_at, table.id).limit(BATCH)).all()
        if not due:
            db.session.rollback()
            return []
        until = current + CLAIM
        claimed = db.session.execute(
            update(table).where(table.id.in_(due), table.status == PENDING, free)
            .values(claimed_until=until)
            .returning(table.id, table.client_id, table.sid, table.id_nat, table.created_at,
                       table.attempts)
            .execution_options(synchronize_session=False)).mappings().all()
        clients = {c.client_id: c for c in db.session.scalars(select(Client).where(
            Client.client_id.in_({row["client_id"] for row in claimed})))}
        rows = []
        for row in claimed:
            client = clients.get(row["client_id"])
            rows.append({**row, "claimed_until": until,
                         "uri": client.backchannel_logout_uri if client else None,
                         "alg": client.id_token_signed_response_alg if client else None})
        db.session.commit()
        return rows
    except BaseException:
        db.session.rollback()
        raise


def send(rows: list[dict], current: int) -> list[str]:
    """POST the logout tokens of claimed ``rows`` (§2.5) all at once — a client that does
    not answer delays no other — and record each outcome: delivered, retry or failed."""
    tokens = [logout_token(row["client_id"], row["alg"], row["sid"], row["id_nat"])
              if row["uri"] else None for row in rows]
    config = idp().settings
    private_ok = config.mode != "production" or config.backchannel_logout_private_networks
    with ThreadPoolExecutor(max_workers=max(len(rows), 1),
                            thread_name_prefix="backchannel-post") as pool:
        errors = list(pool.map(post, [row["uri"] for row in rows], tokens,
                               [private_ok] * len(rows)))
    outcomes = []
    for row, error in zip(rows, errors, strict=True):
        permanent = not row["uri"] or (error or "").startswith(REFUSED)
        outcome = DELIVERED if error is None else \
            FAILED if permanent or current - row["created_at"] >= GIVE_UP else "retry"
        _record(row, outcome, error, current)
        outcomes.append(outcome)
    return outcomes


#: how a destination psc-idp will not post to begins its error (a permanent failure)
REFUSED = "refused: "


def post(uri: str | None, token: str | None, private_ok: bool = True) -> str | None:
    """One POST of ``logout_token``; None when the client answered 2xx, else why not.
    Unless ``private_ok``, a URI whose host resolves to a private, loopback or link-local
    address is refused (a registered URI must not turn psc-idp into a way into its own
    network)."""
    if not uri:
        return "the client is gone or no longer registers a back-channel URI"
    if not private_ok:
        private = private_destination(uri)
        if private:
            return REFUSED + private
    try:  # the status is enough: the body is never read (stream), whatever its size
        with requests.post(uri, data={"logout_token": token}, timeout=TIMEOUT, stream=True,
                           allow_redirects=False,
                           headers={"Cache-Control": "no-store"}) as answer:
            status = answer.status_code
    except requests.RequestException as exc:
        return type(exc).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


def private_destination(uri: str) -> str | None:
    """Why ``uri`` points into a private network (its host is, or resolves to, an address
    that is not global), or None."""
    parts = urlsplit(uri)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return None  # unresolvable now: the POST fails and is retried
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return f"{parts.hostname} resolves to {ip}, not a public address"
    return None


def _record(row: dict, outcome: str, error: str | None, current: int) -> None:
    from .. import ops

    attempts = row["attempts"] + 1
    values = {"attempts": attempts, "claimed_until": None, "last_error": error}
    if outcome == "retry":
        values["next_attempt_at"] = current + BACKOFF[min(attempts, len(BACKOFF)) - 1]
    else:
        values.update(status=outcome, done_at=current)
    table = BackchannelLogout
    try:
        mine = db.session.execute(
            update(table).where(table.id == row["id"],
                                table.claimed_until == row["claimed_until"])
            .values(**values).execution_options(synchronize_session=False)).rowcount
        detail = {"client_id": row["client_id"], "id_nat": row["id_nat"], "sid": row["sid"],
                  "attempts": attempts}
        if mine and outcome == DELIVERED:
            audit.record("logout.backchannel.delivered", **detail)
        elif mine and outcome == FAILED:
            audit.record("logout.backchannel.failed", "failure", error=error, **detail)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    ops.backchannel_logout(outcome)
    if outcome != DELIVERED:
        log.info("back-channel logout to %s (%s): %s, %s", row["client_id"], row["uri"],
                 error, outcome)


class Sender(workers.Worker):
    """The background thread of one process."""

    log = log
    label = "back-channel logout"

    def round(self) -> None:
        self.step("a round", lambda: run_once(stop=self._stop))


_EXTENSION = "psc_idp.backchannel"


def start(app: Flask) -> Sender | None:
    """Start this process's sender (once per process); none when
    ``backchannel_logout_interval`` is 0."""
    return workers.start(app, _EXTENSION,
                         app.extensions["psc_idp"].settings.backchannel_logout_interval,
                         Sender)


def stop(app: Flask) -> None:
    workers.stop(app, _EXTENSION)
