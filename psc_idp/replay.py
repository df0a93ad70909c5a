"""Identifiers of signed messages already seen (RFC 7523 §3 for client assertions; the
e-CPS phones' signed messages too): a jti is accepted once until it expires."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


class AssertionJti(db.Model):
    """jti of client assertions already seen (RFC 7523 §3 replay protection)."""

    __tablename__ = "oauth_assertion_jti"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
