"""The audit trail: one durable record per authentication, token issuance, refresh,
revocation, logout and admin action, written in the caller's transaction. Never a
secret, code, token or PIN in a record."""

from __future__ import annotations

import time

from flask import has_request_context, request
from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(60), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    id_nat: Mapped[str | None] = mapped_column(String(40), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


def record(event: str, outcome: str = "success", *, id_nat=None, client_id=None, **detail):
    """Add an audit record to the current transaction (the caller commits)."""
    address = request.remote_addr if has_request_context() else None
    db.session.add(
        AuditEvent(
            at=int(time.time()), event=event, outcome=outcome, id_nat=id_nat,
            client_id=client_id, address=address, detail=detail,
        )
    )
