"""CIBA state, shared by every IdP process: any of them may receive the request, the
approval or the poll (CIBA Core §7-§11)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class CibaRequest(db.Model):
    """A backchannel authentication request. ``real`` is False for the decoy written when
    the idNat cannot be asked (unknown, no e-CPS device, throttled): the client sees the
    same answers and timing, no phone or card tool ever sees it, and it expires. The
    ``auth_req_id`` is known to the client only: its SHA-256 is stored."""

    __tablename__ = "ciba_request"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    auth_req_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    client_name: Mapped[str] = mapped_column(String(200), default="")
    #: MOBILE (the e-CPS phone) or CARD (the card in the desktop tool)
    channel: Mapped[str] = mapped_column(String(10))
    id_nat: Mapped[str] = mapped_column(String(40), index=True)
    real: Mapped[bool] = mapped_column(Boolean)
    scope: Mapped[str] = mapped_column(String(400))
    binding_message: Mapped[str | None] = mapped_column(String(40))
    #: CARD: what the card signs (with the request id and the decision)
    challenge: Mapped[str | None] = mapped_column(String(64))
    #: MOBILE: the e-CPS login request shown on the phone
    login_request_id: Mapped[str | None] = mapped_column(String(40))
    #: poll or ping (CIBA Core §5); ping: the client's bearer for its notification endpoint
    delivery: Mapped[str] = mapped_column(String(10), default="poll")
    notification_token: Mapped[str | None] = mapped_column(Text)
    #: the ping: pending, delivered or failed (None: poll mode, or nothing to say yet)
    ping_status: Mapped[str | None] = mapped_column(String(10))
    ping_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ping_next_at: Mapped[int | None] = mapped_column(BigInteger, index=True)
    #: pending | approved | denied | used (expiry is read off ``expires_at``)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    interval: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[int | None] = mapped_column(BigInteger)
    #: how the professional approved: card or ecps, and its detail (fingerprint, device)
    method: Mapped[str | None] = mapped_column(String(10))
    method_detail: Mapped[str | None] = mapped_column(String(128))
    #: why a request ended without approval (denied, wrong_code, …) for the audit and ops
    reason: Mapped[str | None] = mapped_column(String(40))
    network: Mapped[str] = mapped_column(String(64), default="")
    #: what the channel handed back with the approval (``login.outcome.Success``)
    acr: Mapped[str | None] = mapped_column(String(40))
    amr: Mapped[list | None] = mapped_column(JSON)
