"""What is kept of a deleted client: its id, so that no new client ever takes it over (a
client re-created under the same id would inherit what was issued to the old one)."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class DeletedClient(db.Model):
    __tablename__ = "oauth_client_deleted"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deleted_at: Mapped[int] = mapped_column(BigInteger)
