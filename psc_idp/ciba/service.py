"""The life of a CIBA request (CIBA Core §7-§11): started by a client, decided by the
professional on a channel (the e-CPS phone or the card tool), polled by the client until
it is used once. Every change of status is one conditional UPDATE: the first wins."""

from __future__ import annotations

import secrets

from sqlalchemy import case, select, update

from .. import audit, ops
from ..clock import digest, keyed_digest, now
from ..extensions import db
from ..login.outcome import Failure, Success
from ..settings import current as settings
from .models import CibaRequest

CHANNELS = ("MOBILE", "CARD")
PENDING, APPROVED, DENIED, USED = "pending", "approved", "denied", "used"


class CibaError(Exception):
    """A refusal with its wire code (CIBA Core §13, RFC 6749 §5.2) and HTTP status."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


def new(client, id_nat: str, channel: str, scope: str, *, real: bool, lifetime: int,
        binding_message: str | None, delivery: str, notification_token: str | None,
        network: str) -> tuple[str, CibaRequest]:
    """A request row (not committed) and the ``auth_req_id`` only the client will know."""
    request_id = secrets.token_urlsafe(24)
    auth_req_id = auth_req_id_of(request_id)
    current = now()
    row = CibaRequest(
        id=request_id, auth_req_hash=digest(auth_req_id),
        client_id=client.client_id, client_name=(client.name or client.client_id)[:200],
        channel=channel, id_nat=id_nat, real=real, scope=scope,
        binding_message=binding_message,
        challenge=secrets.token_urlsafe(32) if channel == "CARD" else None,
        delivery=delivery, notification_token=notification_token, status=PENDING,
        created_at=current, expires_at=current + lifetime,
        interval=settings().ciba_interval, network=network)
    db.session.add(row)
    return auth_req_id, row


def auth_req_id_of(request_id: str) -> str:
    """The client's ``auth_req_id`` of a request: a MAC of its id under the app's secret,
    so that nothing usable is stored and the ping sender can still name it (§10.2)."""
    return keyed_digest(b"ciba-auth-req-id:" + request_id.encode())


def card_pending(id_nat: str) -> list[CibaRequest]:
    """What the card tool shows the professional: live CARD requests for them, oldest
    first (decoys never)."""
    return list(db.session.scalars(select(CibaRequest).where(
        CibaRequest.id_nat == id_nat, CibaRequest.channel == "CARD",
        CibaRequest.real.is_(True), CibaRequest.status == PENDING,
        CibaRequest.expires_at >= now()).order_by(CibaRequest.created_at)))


def decide(request_id: str, id_nat: str, approve: bool, method: str, detail: str,
           *, reason: str | None = None) -> str:
    """A channel's decision on a pending request of ``id_nat`` (the first one counts),
    handed back to the interaction and committed; a ping-mode client is then notified.
    Returns the new status; raises ``CibaError`` when there is nothing to decide."""
    outcome = Success.now(id_nat, method, detail) if approve else \
        Failure(reason or "ciba_denied")
    if not settle(request_id, outcome, id_nat=id_nat, method=method):
        db.session.rollback()
        raise CibaError("expired", "this request was already answered, has expired or "
                                   "does not exist", 410)
    db.session.commit()
    return APPROVED if approve else DENIED


def find(auth_req_id: str) -> CibaRequest | None:
    if not auth_req_id or len(auth_req_id) > 100:
        return None
    return db.session.scalar(select(CibaRequest).where(
        CibaRequest.auth_req_hash == digest(auth_req_id)))


def settle(request_id: str, outcome: Success | Failure, *, id_nat: str, method: str) -> bool:
    """A channel's answer for a CIBA request, in the caller's transaction: approved with
    what the method handed back, or denied with its reason (audited). False when the
    request was no longer pending (it keeps its state)."""
    approve = isinstance(outcome, Success)
    current = now()
    values = dict(status=APPROVED if approve else DENIED, method=method,
                  ping_status=case((CibaRequest.delivery == "ping", "pending"), else_=None),
                  ping_next_at=current)
    if approve:  # decided_at: the login's auth_time
        values.update(method_detail=outcome.detail, acr=outcome.acr, amr=outcome.amr,
                      decided_at=outcome.auth_time)
    else:
        values.update(reason=outcome.reason, decided_at=current)
    claimed = db.session.execute(
        update(CibaRequest).where(
            CibaRequest.id == request_id, CibaRequest.id_nat == id_nat,
            CibaRequest.real.is_(True), CibaRequest.status == PENDING,
            CibaRequest.expires_at >= current)
        .values(**values).execution_options(synchronize_session=False)).rowcount == 1
    if claimed:
        ops.ciba("approved" if approve else "denied")
        audit.record("ciba.approved" if approve else "ciba.denied",
                     "success" if approve else "failure", id_nat=id_nat, method=method,
                     request=request_id, **({} if approve else {"reason": outcome.reason}))
    return claimed
