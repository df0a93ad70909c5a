"""e-CPS login by number matching (psc.md §6): a request for the browser, shown on the
phone with three codes; the phone's signed decision; the browser's one use of an
approval. Every change of a request's status is one conditional UPDATE (first wins)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import select, update

from .. import audit, ops
from ..clock import now
from ..directory.lookup import find_active
from ..extensions import db, idp
from ..login.outcome import Failure, Success
from . import doorbell, limits, messaging
from .enrolment import devices_of
from .models import Device, LoginRequest
from .signed import DECISION_TYP, EcpsError, identifier, same, settings, signed_claims


def _code(digits: int) -> str:
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def start_login(interaction_id: str, client_id: str, id_nat: str, client_name: str,
                network: str, *, code: str | None = None, lifetime: int | None = None,
                before_commit: Callable[[LoginRequest], None] | None = None) -> LoginRequest:
    """A login request for the interaction ``interaction_id`` (a browser's login, or a
    CIBA request whose ``code`` is the client's binding message, over its ``lifetime``);
    a decoy when the idNat
    cannot log in with e-CPS right now (unknown, no device, ``network`` throttled for it),
    so that the page never tells who exists. It replaces ``network``'s pending request for
    the idNat (one per network on the phone), and the phone keeps the newest
    ``ecps_max_pending``. ``before_commit`` sees the request before anything is committed
    or sent to a phone."""
    current = now()
    practitioner = find_active(id_nat)
    has_device = bool(db.session.scalar(
        select(Device.id).where(Device.id_nat == id_nat, Device.status == "active").limit(1)))
    throttled = limits.throttled(id_nat, network)  # asked for every idNat: same timing
    real = practitioner is not None and has_device and not throttled
    code = code or _code(2)
    candidates = {code}
    while len(candidates) < 3:
        candidates.add(_code(2))
    mine = (LoginRequest.id_nat == id_nat, LoginRequest.network == network)
    unanswered = _supersede("replaced", *mine, LoginRequest.real.is_(True),
                            LoginRequest.expires_at >= current)
    _supersede("replaced", *mine)  # decoys and expired requests
    ops.login("ecps", "cancelled", unanswered)  # asked again before an answer
    request = LoginRequest(
        id=secrets.token_urlsafe(24), tx_id=interaction_id, id_nat=id_nat, real=real, code=code,
        candidates=sorted(candidates), nonce=secrets.token_urlsafe(24),
        client_name=client_name[:200], created_at=current, network=network,
        expires_at=current + (lifetime or settings().ecps_request_lifetime))
    db.session.add(request)
    db.session.flush()
    _keep_newest(id_nat)  # for decoys too: the same statements, the same timing
    doorbell.announce(id_nat)  # its waiting phones look when this commits (decoys: same work)
    reason = {} if real else {"reason": "throttled" if practitioner and has_device
                              else "not_available"}
    if not real:
        ops.login("ecps", "unknown_id_nat" if practitioner is None else
                  "no_device" if not has_device else "locked")
    audit.record("ecps.login.requested", "success" if real else "failure", id_nat=id_nat,
                 client_id=client_id, network=network, **reason)
    if before_commit is not None:
        before_commit(request)
    db.session.commit()
    devices = devices_of(id_nat)  # read for decoys too (timing); only real requests ring
    if real:
        messaging.notify_devices(devices, request)
    return request


def _supersede(status: str, *where) -> int:
    """``replaced`` by the same network's newer request (unanswered: counts as a failure of
    that network), or ``superseded`` by other networks' (``_keep_newest``); how many."""
    return db.session.execute(
        update(LoginRequest).where(LoginRequest.status == "pending", *where)
        .values(status=status, decided_at=now())
        .execution_options(synchronize_session=False)).rowcount


def _keep_newest(id_nat: str) -> None:
    """The phone shows at most ``ecps_max_pending`` requests of a professional: the oldest
    give way (strangers from fewer networks than that never push the owner's off)."""
    older = db.session.scalars(select(LoginRequest.id).where(
        LoginRequest.id_nat == id_nat, LoginRequest.real.is_(True),
        LoginRequest.status == "pending", LoginRequest.expires_at >= now())
        .order_by(LoginRequest.created_at.desc(), LoginRequest.id)
        .offset(settings().ecps_max_pending)).all()
    if older:
        _supersede("superseded", LoginRequest.id.in_(older))


#: what the login page may know of a request (``browser_status``), closed set
BROWSER_STATUSES = ("pending", "approved", "denied", "wrong_code", "cancelled", "expired")


def browser_status(request: LoginRequest) -> str:
    """What the login page may know (``BROWSER_STATUSES``): a wrong pick on the phone is
    told apart from a refusal, so that the page says which happened."""
    if request.status == "pending" and request.expires_at < now():
        return "expired"
    return {"used": "approved", "superseded": "expired",
            "replaced": "expired"}.get(request.status, request.status)


def settled_status(request: LoginRequest) -> str:
    """``browser_status`` for the page that ends the wait: a real request that expired
    unanswered (or that other networks' requests pushed off the phone) is counted there;
    denials and wrong codes are counted when decided, replaced requests when replaced."""
    state = browser_status(request)
    if state == "expired" and request.real and request.status in ("pending", "superseded"):
        ops.login("ecps", "expired")
    return state
def cancel(request: LoginRequest, client_id: str | None) -> bool:
    """The browser gives up its pending request (the page's Cancel): the phone no longer
    shows it. False when it was no longer pending (decided, expired, replaced)."""
    current = now()
    claimed = db.session.execute(
        update(LoginRequest).where(LoginRequest.id == request.id,
                                   LoginRequest.status == "pending",
                                   LoginRequest.expires_at >= current)
        .values(status="cancelled", decided_at=current)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        return False
    audit.record("ecps.login.cancelled", id_nat=request.id_nat, client_id=client_id,
                 network=request.network)
    ops.login("ecps", "cancelled")
    db.session.commit()
    return True


def pending_for(device: Device) -> list[dict]:
    """What the phone shows: live requests for its professional, oldest first, with three
    codes and where each comes from (the requester's network)."""
    rows = db.session.scalars(select(LoginRequest).where(
        LoginRequest.id_nat == device.id_nat, LoginRequest.real.is_(True),
        LoginRequest.status == "pending", LoginRequest.expires_at >= now())
        .order_by(LoginRequest.created_at))
    return [{"request": r.id, "nonce": r.nonce, "candidates": r.candidates,
             "client": r.client_name, "network": r.network, "created_at": r.created_at,
             "expires_at": r.expires_at} for r in rows]


def decide(token: str) -> LoginRequest:
    """Apply a signed decision (approve with the picked code, or deny): only the first
    decision on a pending request counts."""
    device, claims = signed_claims(token, DECISION_TYP)
    rid = identifier(claims.get("request"), 40)
    request = db.session.get(LoginRequest, rid) if rid else None
    if request is None or not request.real or request.id_nat != device.id_nat:
        raise EcpsError("unknown_request", "no such login request for this device", 404)
    iat = claims.get("iat")
    if not isinstance(iat, int) or abs(now() - iat) > settings().ecps_request_lifetime:
        raise EcpsError("invalid_token", "stale decision", 401)
    if not same(claims.get("nonce"), request.nonce):
        raise EcpsError("invalid_token", "wrong nonce", 401)
    status = _outcome(claims, request)
    current = now()
    claimed = db.session.execute(
        update(LoginRequest).where(LoginRequest.id == request.id,
                                   LoginRequest.status == "pending",
                                   LoginRequest.expires_at >= current)
        .values(status=status, decided_at=current, device_id=device.id)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        db.session.refresh(request)
        if request.status not in ("pending", "superseded", "replaced", "cancelled"):
            raise EcpsError("already_decided", "this login request was already answered", 409)
        raise EcpsError("expired", "this login request has expired, was cancelled or was "
                                   "replaced by a newer one", 410)
    device.last_used_at = current
    db.session.refresh(request)
    _audit(request, device)
    _hand_back(request, device)
    db.session.commit()
    return request


def _hand_back(request: LoginRequest, device: Device) -> None:
    """The decision goes back to the interaction, in this transaction: a browser's login
    goes on when its page asks; a decoupled one (CIBA) is settled now."""
    if request.status == "approved":
        outcome = Success.now(request.id_nat, "ecps", device.id)
    else:
        outcome = Failure("ecps_denied" if request.status == "denied" else "ecps_wrong_code")
    idp().interactions.decided(request.tx_id, outcome, id_nat=request.id_nat, method="ecps")


def _outcome(claims: dict, request: LoginRequest) -> str:
    decision = claims.get("decision")
    if decision == "approve":
        return "approved" if same(claims.get("code"), request.code) else "wrong_code"
    if decision == "deny":
        return "denied"
    raise EcpsError("invalid_request", "decision must be 'approve' or 'deny'")


def _audit(request: LoginRequest, device: Device) -> None:
    who = {"id_nat": device.id_nat, "device": device.id, "network": request.network}
    if request.status == "approved":
        audit.record("ecps.login.approved", **who)
        return
    ops.login("ecps", request.status)  # denied or wrong_code
    if request.status == "wrong_code":
        audit.record("ecps.login.approved", "failure", reason="wrong_code", **who)
    else:
        audit.record("ecps.login.denied", "failure", reason="denied_by_professional", **who)
    limits.record_failure(request)


def use(request: LoginRequest) -> bool:
    """The browser's one use of an approval (concurrent completions: one wins)."""
    claimed = db.session.execute(
        update(LoginRequest).where(LoginRequest.id == request.id,
                                   LoginRequest.status == "approved")
        .values(status="used").execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        return False
    return True
