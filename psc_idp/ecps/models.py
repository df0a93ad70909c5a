"""e-CPS state, all in the database so that any psc-idp process can serve any step."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class Device(db.Model):
    """A phone enrolled for a professional: its public key (JWK, EC P-256); the private key
    never leaves the phone."""

    __tablename__ = "ecps_device"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    id_nat: Mapped[str] = mapped_column(String(40), index=True)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | revoked
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    activated_by: Mapped[str] = mapped_column(String(10))  # card | codes


class Activation(db.Model):
    """A pending enrolment: a QR code shown after a card login (``qr``), or codes sent
    by SMS and e-mail (``codes``). Only digests of the secrets are stored."""

    __tablename__ = "ecps_activation"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    id_nat: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    secret_hash: Mapped[str] = mapped_column(String(64), index=True)
    email_code_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class LoginRequest(db.Model):
    """A login waiting for the phone. ``real`` is false for the decoy created when the
    idNat is unknown, has no device or the requester's network is throttled for it: the
    browser cannot tell the difference, and no phone ever sees a decoy. ``network`` is the
    requester's (IPv4 /24, IPv6 /64): the abuse limits count per network (``limits``)."""

    __tablename__ = "ecps_login_request"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tx_id: Mapped[str] = mapped_column(String(64), index=True)
    id_nat: Mapped[str] = mapped_column(String(40), index=True)
    real: Mapped[bool] = mapped_column(Boolean)
    code: Mapped[str] = mapped_column(String(2))
    candidates: Mapped[list] = mapped_column(JSON)
    nonce: Mapped[str] = mapped_column(String(64))
    client_name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default="pending")
    # pending | approved | denied | wrong_code | used | replaced | superseded | cancelled
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    decided_at: Mapped[int | None] = mapped_column(BigInteger)
    device_id: Mapped[str | None] = mapped_column(String(40))
    network: Mapped[str] = mapped_column(String(64), default="")

