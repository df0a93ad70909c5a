"""e-CPS enrolment (psc.md §6): a QR code after a card login, or one code by SMS and one
by e-mail; the device's public key registered; devices listed and revoked.

Every set of codes sent stays valid until it expires or is used: a new request (anyone
can make one) never voids the codes the professional already received. A submission is
compared with all of them; one whose half matches counts a wrong attempt on that set
(``ecps_otp_attempts`` void it); submissions are counted per network and idNat before any
comparison (``limits.may_try_codes``). Using a set is one conditional UPDATE."""

from __future__ import annotations

import json
import secrets
import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..clock import digest, now
from ..directory.identifiers import is_adeli_id_nat
from ..directory.lookup import find_active
from ..extensions import db
from . import limits, messaging
from .models import Activation, Device
from .signed import EcpsError, public_key, settings

MAX_DEVICES = 5
CARD_ONLY = ("activation by codes is not offered for ADELI identifiers: activate the e-CPS "
             "with the CPS card, or use the RPPS idNat")


def start_qr_activation(id_nat: str) -> str:
    """After a card login: a one-time activation secret for the QR code (90 s)."""
    secret = secrets.token_urlsafe(24)
    db.session.add(Activation(id=uuid.uuid4().hex, id_nat=id_nat, kind="qr",
                              secret_hash=digest(secret),
                              expires_at=now() + settings().ecps_qr_lifetime))
    audit.record("ecps.activation.started", id_nat=id_nat, kind="qr")
    db.session.commit()
    return secret


def qr_text(secret: str) -> str:
    """What the QR code holds: the issuer and the secret, nothing personal."""
    return "psc-ecps:activate?" + json.dumps(
        {"issuer": settings().issuer, "secret": secret}, separators=(",", ":"))


def codes_offered(id_nat: str) -> bool:
    """Whether activation by codes is offered for this typed idNat. Not to ADELI
    professionals (ANS FAQ 11/2025, psc.md §10): they activate with their card, and one who
    also has an RPPS types their RPPS idNat. Decided on the identifier's shape alone
    (``0`` + ADELI number), never on the directory: the answer tells nothing about who
    exists."""
    return not is_adeli_id_nat(id_nat)


def start_code_activation(id_nat: str) -> None:
    """Send one code by SMS and one by e-mail to the contacts the directory holds. Says
    nothing about whether the idNat exists: the caller answers the same either way."""
    if not codes_offered(id_nat):  # answered before any rate limit: aggregated
        audit.record_throttled("ecps.activation.started", "failure", id_nat=id_nat[:40],
                               kind="codes", reason="card_only")
        db.session.commit()
        return
    practitioner = find_active(id_nat)
    if practitioner is None or not practitioner.phone or not practitioner.email:
        audit.record("ecps.activation.started", "failure", id_nat=id_nat[:40], kind="codes",
                     reason="no_contact")
        db.session.commit()
        return
    sms_code, email_code = _code(8), _code(8)
    db.session.add(Activation(
        id=uuid.uuid4().hex, id_nat=id_nat, kind="codes", secret_hash=digest(sms_code),
        email_code_hash=digest(email_code), expires_at=now() + settings().ecps_otp_lifetime))
    audit.record("ecps.activation.started", id_nat=id_nat, kind="codes")
    db.session.commit()
    messaging.send_activation_codes(practitioner, sms_code=sms_code, email_code=email_code)


def _code(digits: int) -> str:
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def activate(payload: dict, network: str) -> Device:
    """Enrol a device from the app's request (checked by ``body``): ``{"public_jwk",
    "label"}`` with either ``{"qr_secret"}`` or ``{"id_nat", "sms_code", "email_code"}``."""
    key = public_key(payload.get("public_jwk"))
    label = str(payload.get("label") or "e-CPS")[:80]
    activation = _matching_activation(payload, network)
    thumbprint = key.thumbprint()
    if db.session.scalar(select(Device).where(Device.thumbprint == thumbprint)) is not None:
        raise EcpsError("invalid_key", "this key is already enrolled")
    active = db.session.scalars(select(Device.id).where(
        Device.id_nat == activation.id_nat, Device.status == "active")).all()
    if len(active) >= MAX_DEVICES:
        raise EcpsError("too_many_devices", f"at most {MAX_DEVICES} devices; revoke one")
    _use(activation)
    device = Device(id=uuid.uuid4().hex, id_nat=activation.id_nat,
                    public_jwk=key.as_dict(private=False), thumbprint=thumbprint, label=label,
                    created_at=now(), activated_by="card" if activation.kind == "qr" else "codes")
    db.session.add(device)
    audit.record("ecps.device.activated", id_nat=device.id_nat, device=device.id,
                 kind=activation.kind)
    try:
        db.session.commit()
    except IntegrityError:  # the same key enrolled at the same moment
        db.session.rollback()
        raise EcpsError("invalid_key", "this key is already enrolled") from None
    return device


def _use(activation: Activation) -> None:
    """Mark ``activation`` used: only one enrolment per activation, whatever the
    concurrency."""
    current = now()
    claimed = db.session.execute(
        update(Activation).where(Activation.id == activation.id, Activation.used_at.is_(None),
                                 Activation.expires_at >= current,
                                 Activation.attempts < settings().ecps_otp_attempts)
        .values(used_at=current).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise EcpsError("invalid_activation", "these codes or this QR code were used or "
                                              "expired meanwhile")


def _matching_activation(payload: dict, network: str) -> Activation:
    current = now()
    if "qr_secret" in payload:
        activation = db.session.scalar(select(Activation).where(
            Activation.kind == "qr", Activation.secret_hash == digest(payload["qr_secret"])))
        if activation is None or activation.used_at or activation.expires_at < current:
            raise EcpsError("invalid_activation", "this QR code is unknown, used or expired")
        return activation
    id_nat = payload["id_nat"]
    if not codes_offered(id_nat):
        raise EcpsError("card_activation_required", CARD_ONLY, 403)
    if not limits.may_try_codes(id_nat, network):
        raise EcpsError("too_many_attempts", "too many activation attempts for this idNat "
                                             "from your network; wait a few minutes", 429)
    sms, email = digest(payload["sms_code"]), digest(payload["email_code"])
    candidates = db.session.scalars(select(Activation).where(
        Activation.kind == "codes", Activation.id_nat == id_nat, Activation.used_at.is_(None),
        Activation.expires_at >= current,
        Activation.attempts < settings().ecps_otp_attempts,
        or_(Activation.secret_hash == sms, Activation.email_code_hash == email))).all()
    for activation in candidates:
        if secrets.compare_digest(activation.secret_hash, sms) and \
                secrets.compare_digest(activation.email_code_hash or "", email):
            return activation
    for activation in candidates:  # one half right: a guess aimed at this set
        db.session.execute(update(Activation).where(
            Activation.id == activation.id,
            Activation.attempts < settings().ecps_otp_attempts)
            .values(attempts=Activation.attempts + 1)
            .execution_options(synchronize_session=False))
    audit.record("ecps.activation", "failure", id_nat=id_nat, reason="wrong_codes",
                 network=network)
    db.session.commit()
    raise EcpsError("invalid_activation", "the codes do not match, or no activation is in "
                                          "progress; ask for new codes")


def devices_of(id_nat: str) -> list[Device]:
    return list(db.session.scalars(
        select(Device).where(Device.id_nat == id_nat).order_by(Device.created_at)))


def revoke_device(device_id: str, id_nat: str, actor: str = "professional") -> bool:
    device = db.session.get(Device, device_id)
    if device is None or device.id_nat != id_nat or device.status != "active":
        return False
    device.status, device.revoked_at = "revoked", now()
    audit.record("ecps.device.revoked", id_nat=id_nat, device=device_id, actor=actor)
    db.session.commit()
    return True
