"""The life of a CIBA request (CIBA Core §7-§11): started by a client, decided by the
professional on a channel (the e-CPS phone or the card tool), polled by the client until
it is used once. Every change of status is one conditional UPDATE: the first wins."""

from __future__ import annotations

import secrets

from sqlalchemy import case, select, update

from .. import audit, ops
from ..extensions import db
from ..oidc.models import digest, now
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
    auth_req_id = secrets.token_urlsafe(32)
    current = now()
    row = CibaRequest(
        id=secrets.token_urlsafe(24), auth_req_hash=digest(auth_req_id),
        client_id=client.client_id, client_name=(client.name or client.client_id)[:200],
        channel=channel, id_nat=id_nat, real=real, scope=scope,
        binding_message=binding_message,
        challenge=secrets.token_urlsafe(32) if channel == "CARD" else None,
        delivery=delivery, notification_token=notification_token, status=PENDING,
        created_at=current, expires_at=current + lifetime,
        interval=settings().ciba_interval, network=network)
    db.session.add(row)
    return auth_req_id, row


def card_pending(id_nat: str) -> list[CibaRequest]:
    """What the card tool shows the professional: live CARD requests for them, oldest
    first (decoys never)."""
    return list(db.session.scalars(select(CibaRequest).where(
        CibaRequest.id_nat == id_nat, CibaRequest.channel == "CARD",
        CibaRequest.real.is_(True), CibaRequest.status == PENDING,
        CibaRequest.expires_at >= now()).order_by(CibaRequest.created_at)))


def decide(request_id: str, id_nat: str, approve: bool, method: str, detail: str,
           *, reason: str | None = None, amr: list | None = None) -> str:
    """Apply the professional's decision on a pending request of theirs (the first one
    counts) and commit it; a ping-mode client is then notified (``ping``). Returns the new
    status; raises ``CibaError`` when there is nothing to decide."""
    current = now()
    status = APPROVED if approve else DENIED
    claimed = db.session.execute(
        update(CibaRequest).where(
            CibaRequest.id == request_id, CibaRequest.id_nat == id_nat,
            CibaRequest.real.is_(True), CibaRequest.status == PENDING,
            CibaRequest.expires_at >= current)
        .values(status=status, decided_at=current, method=method, method_detail=detail,
                reason=None if approve else reason or "denied", amr=amr,
                ping_status=case((CibaRequest.delivery == "ping", "pending"), else_=None),
                ping_next_at=current)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        raise CibaError("expired", "this request was already answered, has expired or "
                                   "does not exist", 410)
    audit.record("ciba.approved" if approve else "ciba.denied",
                 "success" if approve else "failure", id_nat=id_nat, method=method,
                 request=request_id, **({} if approve else {"reason": reason or "denied"}))
    ops.login(method, "success" if approve else reason or "denied")
    db.session.commit()
    return status


def find(auth_req_id: str) -> CibaRequest | None:
    if not auth_req_id or len(auth_req_id) > 100:
        return None
    return db.session.scalar(select(CibaRequest).where(
        CibaRequest.auth_req_hash == digest(auth_req_id)))
