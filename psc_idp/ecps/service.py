"""e-CPS logic: enrolment, login by number matching, approval and denial signed by the
device key, lockout. Views and the API are thin layers over these functions.

Signed messages from the phone are compact JWS (ES256) with ``kid`` = the device id:
- device authentication (API calls): ``typ: ecps-auth+jwt``, claims ``iss`` (device id),
  ``aud`` (the issuer), ``iat``, ``exp`` (≤ 120 s), ``jti`` (single use);
- decision on a login request: ``typ: ecps-decision+jwt``, claims ``request`` (its id),
  ``nonce`` (the server nonce sent with the request), ``decision`` (``approve`` or
  ``deny``), ``code`` (the code picked, for an approval), ``iat``."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select

from .. import audit
from ..directory.identifiers import is_adeli_id_nat
from ..directory.lookup import find_active
from ..extensions import db
from ..oidc.models import AssertionJti, digest, now
from . import messaging
from .models import Activation, Device, Lock, LoginRequest

log = logging.getLogger("psc_idp.ecps")
AUTH_TYP = "ecps-auth+jwt"
DECISION_TYP = "ecps-decision+jwt"
MAX_DEVICES = 5
CARD_ONLY = ("activation by codes is not offered for ADELI identifiers: activate the e-CPS "
             "with the CPS card, or use the RPPS idNat")


class EcpsError(Exception):
    """A phone's request is refused; ``code`` is the API error, ``status`` the HTTP one."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


def settings():
    return current_app.extensions["psc_idp"].settings


# --- keys and signed messages -----------------------------------------------------------

def public_key(jwk: dict) -> ECKey:
    """Accept only a public EC P-256 JWK."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" \
            or "d" in jwk:
        raise EcpsError("invalid_key", "the device key must be a public EC P-256 JWK")
    try:
        return ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")})
    except (KeyError, ValueError, JoseError) as exc:
        raise EcpsError("invalid_key", "the device key is not a valid P-256 point") from exc


def _signed_claims(token: str, typ: str) -> tuple[Device, dict]:
    """The active device that signed ``token`` (its ``kid``) and the claims."""
    if not isinstance(token, str) or len(token) > 4096:
        raise EcpsError("invalid_token", "a signed message is required", 401)
    found: list[Device] = []

    def device_key(signed):
        header = signed.headers()
        if header.get("alg") != "ES256" or header.get("typ") != typ:
            raise EcpsError("invalid_token", f"expected an ES256 {typ}", 401)
        device = db.session.get(Device, str(header.get("kid", ""))[:40])
        if device is None or device.status != "active":
            raise EcpsError("unknown_device", "this device is not enrolled or was revoked",
                            401)
        found.append(device)
        return public_key(device.public_jwk)

    try:
        decoded = jwt.decode(token, device_key, algorithms=["ES256"])
    except (JoseError, ValueError) as exc:
        raise EcpsError("invalid_token", "malformed signed message, or its signature does "
                                         "not verify", 401) from exc
    return found[0], decoded.claims


def authenticate_device(token: str) -> Device:
    """Check an ``ecps-auth+jwt``: fresh, for this issuer, never seen before."""
    device, claims = _signed_claims(token, AUTH_TYP)
    current = now()
    exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
    if claims.get("iss") != device.id or claims.get("aud") != settings()["issuer"]:
        raise EcpsError("invalid_token", "wrong issuer or audience", 401)
    if not isinstance(exp, int) or not isinstance(iat, int) or exp < current or \
            exp - iat > 120 or iat > current + 30:
        raise EcpsError("invalid_token", "expired or too long-lived", 401)
    if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
        raise EcpsError("invalid_token", "a jti is required", 401)
    key = f"device:{device.id}"
    if db.session.get(AssertionJti, (key, jti)) is not None:
        raise EcpsError("invalid_token", "replayed message", 401)
    db.session.add(AssertionJti(client_id=key, jti=jti, expires_at=exp))
    device.last_used_at = current
    return device


# --- enrolment ------------------------------------------------------------------------------

def start_qr_activation(id_nat: str) -> str:
    """After a card login: a one-time activation secret for the QR code (90 s)."""
    secret = secrets.token_urlsafe(24)
    db.session.add(Activation(id=uuid.uuid4().hex, id_nat=id_nat, kind="qr",
                              secret_hash=digest(secret),
                              expires_at=now() + settings()["ecps_qr_lifetime"]))
    audit.record("ecps.activation.started", id_nat=id_nat, kind="qr")
    db.session.commit()
    return secret


def qr_text(secret: str) -> str:
    """What the QR code holds: the issuer and the secret, nothing personal."""
    return "psc-ecps:activate?" + json.dumps(
        {"issuer": settings()["issuer"], "secret": secret}, separators=(",", ":"))


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
    if not codes_offered(id_nat):
        audit.record("ecps.activation.started", "failure", id_nat=id_nat[:40], kind="codes",
                     reason="card_only")
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
        email_code_hash=digest(email_code), expires_at=now() + settings()["ecps_otp_lifetime"]))
    audit.record("ecps.activation.started", id_nat=id_nat, kind="codes")
    db.session.commit()
    messaging.send_activation_codes(practitioner, sms_code=sms_code, email_code=email_code)


def _code(digits: int) -> str:
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def activate(payload: dict) -> Device:
    """Enrol a device from the app's request: ``{"public_jwk", "label"}`` with either
    ``{"qr_secret"}`` or ``{"id_nat", "sms_code", "email_code"}``."""
    key = public_key(payload.get("public_jwk"))
    label = str(payload.get("label") or "e-CPS")[:80]
    activation = _matching_activation(payload)
    thumbprint = key.thumbprint()
    if db.session.scalar(select(Device).where(Device.thumbprint == thumbprint)) is not None:
        raise EcpsError("invalid_key", "this key is already enrolled")
    active = db.session.scalars(select(Device).where(
        Device.id_nat == activation.id_nat, Device.status == "active")).all()
    if len(active) >= MAX_DEVICES:
        raise EcpsError("too_many_devices", f"at most {MAX_DEVICES} devices; revoke one")
    activation.used_at = now()
    device = Device(id=uuid.uuid4().hex, id_nat=activation.id_nat,
                    public_jwk=key.as_dict(private=False), thumbprint=thumbprint, label=label,
                    created_at=now(), activated_by="card" if activation.kind == "qr" else "codes")
    db.session.add(device)
    audit.record("ecps.device.activated", id_nat=device.id_nat, device=device.id,
                 kind=activation.kind)
    db.session.commit()
    return device


def _matching_activation(payload: dict) -> Activation:
    current = now()
    if "qr_secret" in payload:
        secret = str(payload["qr_secret"])[:100]
        activation = db.session.scalar(select(Activation).where(
            Activation.kind == "qr", Activation.secret_hash == digest(secret)))
        if activation is None or activation.used_at or activation.expires_at < current:
            raise EcpsError("invalid_activation", "this QR code is unknown, used or expired")
        return activation
    id_nat = str(payload.get("id_nat", ""))[:40]
    if not codes_offered(id_nat):
        raise EcpsError("card_activation_required", CARD_ONLY, 403)
    activation = db.session.scalar(
        select(Activation).where(Activation.kind == "codes", Activation.id_nat == id_nat,
                                 Activation.used_at.is_(None),
                                 Activation.expires_at >= current)
        .order_by(Activation.expires_at.desc()).limit(1))
    if activation is None or activation.attempts >= settings()["ecps_otp_attempts"]:
        raise EcpsError("invalid_activation", "no activation in progress; ask for new codes")
    sms_ok = secrets.compare_digest(activation.secret_hash,
                                    digest(str(payload.get("sms_code", ""))))
    email_ok = secrets.compare_digest(activation.email_code_hash or "",
                                      digest(str(payload.get("email_code", ""))))
    if not (sms_ok and email_ok):
        activation.attempts += 1
        audit.record("ecps.activation", "failure", id_nat=id_nat, reason="wrong_codes")
        db.session.commit()
        raise EcpsError("invalid_activation", "the codes do not match")
    return activation


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


# --- login ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Started:
    request: LoginRequest | None  # None: rate-limited
    limited: bool = False


def locked(id_nat: str) -> bool:
    lock = db.session.get(Lock, id_nat)
    return lock is not None and lock.locked_until > now()


def start_login(tx, id_nat: str, client_name: str) -> LoginRequest:
    """A login request for the browser of ``tx``; a decoy when the idNat cannot log in
    with e-CPS right now, so that the page never tells who exists."""
    current = now()
    practitioner = find_active(id_nat)
    real = practitioner is not None and not locked(id_nat) and bool(db.session.scalar(
        select(Device.id).where(Device.id_nat == id_nat, Device.status == "active").limit(1)))
    code = _code(2)
    candidates = {code}
    while len(candidates) < 3:
        candidates.add(_code(2))
    request = LoginRequest(
        id=secrets.token_urlsafe(24), tx_id=tx.id, id_nat=id_nat, real=real, code=code,
        candidates=sorted(candidates), nonce=secrets.token_urlsafe(24),
        client_name=client_name[:200], created_at=current,
        expires_at=current + settings()["ecps_request_lifetime"])
    db.session.add(request)
    audit.record("ecps.login.requested", "success" if real else "failure", id_nat=id_nat,
                 client_id=tx.client_id, **({} if real else {"reason": "not_available"}))
    db.session.commit()
    if real:
        messaging.notify_devices(devices_of(id_nat), request)
    return request


def browser_status(request: LoginRequest) -> str:
    """What the login page may know: pending, approved, denied or expired."""
    if request.status == "pending" and request.expires_at < now():
        return "expired"
    return {"wrong_code": "denied", "used": "approved"}.get(request.status, request.status)


def pending_for(device: Device) -> list[dict]:
    """What the phone shows: live requests for its professional, with three codes."""
    rows = db.session.scalars(select(LoginRequest).where(
        LoginRequest.id_nat == device.id_nat, LoginRequest.real.is_(True),
        LoginRequest.status == "pending", LoginRequest.expires_at >= now())
        .order_by(LoginRequest.created_at))
    return [{"request": r.id, "nonce": r.nonce, "candidates": r.candidates,
             "client": r.client_name, "expires_at": r.expires_at} for r in rows]


def decide(token: str) -> LoginRequest:
    """Apply a signed decision (approve with the picked code, or deny)."""
    device, claims = _signed_claims(token, DECISION_TYP)
    request = db.session.get(LoginRequest, str(claims.get("request", ""))[:40])
    if request is None or not request.real or request.id_nat != device.id_nat:
        raise EcpsError("unknown_request", "no such login request for this device", 404)
    iat = claims.get("iat")
    if not isinstance(iat, int) or abs(now() - iat) > settings()["ecps_request_lifetime"]:
        raise EcpsError("invalid_token", "stale decision", 401)
    if not secrets.compare_digest(str(claims.get("nonce", "")), request.nonce):
        raise EcpsError("invalid_token", "wrong nonce", 401)
    if request.status != "pending":
        raise EcpsError("already_decided", "this login request was already answered", 409)
    if request.expires_at < now():
        raise EcpsError("expired", "this login request has expired", 410)
    decision = claims.get("decision")
    request.decided_at, request.device_id = now(), device.id
    device.last_used_at = now()
    if decision == "approve" and secrets.compare_digest(str(claims.get("code", "")),
                                                        request.code):
        request.status = "approved"
        _reset_failures(device.id_nat)
        audit.record("ecps.login.approved", id_nat=device.id_nat, device=device.id)
    elif decision == "approve":
        request.status = "wrong_code"
        _count_failure(device.id_nat)
        audit.record("ecps.login.approved", "failure", id_nat=device.id_nat,
                     device=device.id, reason="wrong_code")
    elif decision == "deny":
        request.status = "denied"
        _count_failure(device.id_nat)
        audit.record("ecps.login.denied", "failure", id_nat=device.id_nat, device=device.id,
                     reason="denied_by_professional")
    else:
        raise EcpsError("invalid_request", "decision must be 'approve' or 'deny'")
    db.session.commit()
    return request


def _lock_row(id_nat: str) -> Lock:
    lock = db.session.get(Lock, id_nat)
    if lock is None:
        lock = Lock(id_nat=id_nat, failures=0, locked_until=0)
        db.session.add(lock)
    return lock


def _count_failure(id_nat: str) -> None:
    lock = _lock_row(id_nat)
    lock.failures = (lock.failures or 0) + 1
    if lock.failures >= settings()["ecps_max_failures"]:
        lock.locked_until, lock.failures = now() + settings()["ecps_lock_seconds"], 0
        audit.record("ecps.locked", "failure", id_nat=id_nat,
                     until=lock.locked_until)


def _reset_failures(id_nat: str) -> None:
    lock = db.session.get(Lock, id_nat)
    if lock is not None:
        lock.failures = 0
