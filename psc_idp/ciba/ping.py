"""CIBA ping mode (CIBA Core §10.2): once a request of a ping-mode client is decided, a
POST to its ``backchannel_client_notification_endpoint`` with its
``client_notification_token`` as bearer and ``{"auth_req_id": …}``; the client then fetches
the result at the token endpoint. Durable as back-channel logout is: the decision marks the
row ``pending`` in its own transaction, a sender in every serving process (every
``ciba_ping_interval`` seconds) and ``psc-idp housekeeping`` claim due rows with a
conditional update and post them, retrying after ``BACKOFF`` until the request expires."""

from __future__ import annotations

import logging
import threading

import requests
from flask import Flask
from sqlalchemy import select, update

from .. import audit, ops, workers
from ..clock import now
from ..extensions import db, idp
from ..oidc.backchannel import REFUSED, TIMEOUT, private_destination
from ..oidc.models import Client
from .models import CibaRequest
from .service import auth_req_id_of

log = logging.getLogger("psc_idp.ciba")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
#: seconds before the next attempt after the 1st, 2nd … failure (then the last, again)
BACKOFF = (2, 5, 15, 30)
#: how long a sender's claim on a row lasts (above TIMEOUT)
CLAIM = 60
BATCH = 10


def run_once(current: int | None = None, stop: threading.Event | None = None) -> dict:
    """Send every due notification; how many were delivered, will be retried, failed."""
    counts = {DELIVERED: 0, "retry": 0, FAILED: 0}
    while stop is None or not stop.is_set():
        at = current or now()
        batch = claim(at)
        for row in batch:
            counts[send(row, at)] += 1
        if len(batch) < BATCH:
            break
    return counts


def claim(current: int) -> list[CibaRequest]:
    """Up to ``BATCH`` due rows, each claimed for ``CLAIM`` seconds (a row another sender
    holds is skipped); commits."""
    due = db.session.scalars(select(CibaRequest.id).where(
        CibaRequest.ping_status == PENDING, CibaRequest.ping_next_at <= current)
        .order_by(CibaRequest.ping_next_at).limit(BATCH)).all()
    mine = []
    for request_id in due:
        claimed = db.session.execute(
            update(CibaRequest).where(CibaRequest.id == request_id,
                                      CibaRequest.ping_status == PENDING,
                                      CibaRequest.ping_next_at <= current)
            .values(ping_next_at=current + CLAIM)
            .execution_options(synchronize_session=False)).rowcount
        if claimed:
            mine.append(request_id)
    db.session.commit()
    return [db.session.get(CibaRequest, request_id) for request_id in mine]


def send(row: CibaRequest, current: int) -> str:
    client = db.session.get(Client, row.client_id)
    error = notify(client.backchannel_client_notification_endpoint if client else None,
                   row.notification_token, auth_req_id_of(row.id))
    attempts = row.ping_attempts + 1
    permanent = (error or "").startswith(REFUSED) or client is None
    outcome = DELIVERED if error is None else \
        FAILED if permanent or current >= row.expires_at else "retry"
    values = {"ping_attempts": attempts,
              "ping_status": PENDING if outcome == "retry" else outcome,
              "ping_next_at": current + BACKOFF[min(attempts, len(BACKOFF)) - 1]
              if outcome == "retry" else None}
    db.session.execute(update(CibaRequest).where(CibaRequest.id == row.id)
                       .values(**values).execution_options(synchronize_session=False))
    detail = {"client_id": row.client_id, "request": row.id, "attempts": attempts}
    if outcome == DELIVERED:
        audit.record("ciba.ping.delivered", **detail)
    elif outcome == FAILED:
        audit.record("ciba.ping.failed", "failure", error=error, **detail)
    db.session.commit()
    ops.ciba(f"ping_{outcome}")
    if outcome != DELIVERED:
        log.info("CIBA ping to %s: %s, %s", row.client_id, error, outcome)
    return outcome


def notify(uri: str | None, token: str | None, auth_req_id: str) -> str | None:
    """One POST (§10.2); None when the client answered 2xx, else why not. In production,
    a destination in a private network is refused unless
    ``backchannel_logout_private_networks`` allows it (as for logout tokens)."""
    if not uri or not token:
        return "the client no longer registers a notification endpoint"
    config = idp().settings
    if config.mode == "production" and not config.backchannel_logout_private_networks:
        private = private_destination(uri)
        if private:
            return REFUSED + private
    try:
        with requests.post(uri, json={"auth_req_id": auth_req_id}, timeout=TIMEOUT,
                           stream=True, allow_redirects=False,
                           headers={"Authorization": f"Bearer {token}",
                                    "Cache-Control": "no-store"}) as answer:
            status = answer.status_code
    except requests.RequestException as exc:
        return type(exc).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


class Sender(workers.Worker):
    log = log
    label = "CIBA ping"

    def round(self) -> None:
        self.step("a round", lambda: run_once(stop=self._stop))


_EXTENSION = "psc_idp.ciba_ping"


def start(app: Flask) -> Sender | None:
    return workers.start(app, _EXTENSION,
                         app.extensions["psc_idp"].settings.ciba_ping_interval, Sender)


def stop(app: Flask) -> None:
    workers.stop(app, _EXTENSION)
