"""The e-CPS abuse limits: what anyone who knows a professional's public idNat may cause —
pushes to the phone, SMS and e-mails, code guesses — counted per *requester network*
(IPv4 /24, IPv6 /64), never as a lock on the professional (CWE-645, OWASP WSTG "weak lock
out mechanism": a lock any stranger can trigger is a denial of service). README "e-CPS
abuse limits" gives the design and the numbers.

Counters that must be exact under concurrency are single conditional statements
(``ratelimit.count`` / ``ratelimit.claim``) committed before the work they allow; the
failures that silence a network are read from the login requests themselves (a sliding
window, reset by an approval from that network)."""

from __future__ import annotations

from sqlalchemy import select

from .. import audit, ops, ratelimit
from ..clock import now
from ..extensions import db
from ..net import address_prefix, client_address
from ..settings import current as settings
from .models import LoginRequest

#: a requester the limits cannot place (no address) shares one network with its kind
UNKNOWN = "unknown"
HOUR, TEN_MINUTES = 3600, 600
#: what counts against the requester's network: the professional said "not me", picked
#: another code, or the request was replaced by the same network's next one or cancelled
#: from the browser unanswered (a push to the phone all the same)
FAILED = ("denied", "wrong_code", "replaced", "cancelled")


def requester() -> str:
    """The network this request comes from, as the limits key it."""
    address = client_address()
    return address_prefix(address) if address else UNKNOWN


def _within(name: str, subject: str, limit: str, window: int) -> bool:
    allowed = ratelimit.count(name, subject, window) <= getattr(settings(), limit)
    db.session.commit()  # counted even if what follows fails
    if not allowed:
        audit.record_throttled("ecps.rate_limited", reason=name)
        db.session.commit()
    return allowed


# --- login requests (pushes) ------------------------------------------------------------------

def may_request_login(id_nat: str, network: str) -> bool:
    """A login request from ``network`` for ``id_nat``: within the network's budget for
    all idNats, then within its budget for this idNat. Strangers elsewhere never spend
    the owner's budget; counted for every idNat typed, known or not."""
    allowed = _within("ecps-login-network", network, "ecps_rate_per_address", TEN_MINUTES) \
        and _within("ecps-login-idnat", f"{id_nat}@{network}", "ecps_rate_per_id_nat",
                    TEN_MINUTES)
    if not allowed:
        ops.login("ecps", "rate_limited")
    return allowed


def failures(id_nat: str, network: str) -> int:
    """Denials, wrong picks and unanswered (expired or replaced) requests of ``network`` for
    ``id_nat`` in the last ``ecps_lock_seconds``, since its last approval (sliding
    window)."""
    current = now()
    rows = db.session.execute(select(LoginRequest.status, LoginRequest.expires_at).where(
        LoginRequest.id_nat == id_nat, LoginRequest.network == network,
        LoginRequest.real.is_(True),
        LoginRequest.created_at >= current - settings().ecps_lock_seconds)
        .order_by(LoginRequest.created_at)).all()
    count = 0
    for status, expires_at in rows:
        if status in ("approved", "used"):
            count = 0
        elif status in FAILED or status == "pending" and expires_at < current:
            count += 1
    return count


def throttled(id_nat: str, network: str) -> bool:
    """Whether ``network``'s login requests for ``id_nat`` stop reaching the phone (they
    become decoys): the professional said "not me" (or ignored it) often enough."""
    return failures(id_nat, network) >= settings().ecps_max_failures


def record_failure(request: LoginRequest) -> None:
    """After a denial or a wrong pick (in the decision's transaction): audit the moment
    its network becomes throttled for the idNat."""
    if failures(request.id_nat, request.network) == settings().ecps_max_failures:
        audit.record("ecps.throttled", "failure", id_nat=request.id_nat,
                     network=request.network, seconds=settings().ecps_lock_seconds)


# --- activation codes (SMS and e-mail) -------------------------------------------------------

def may_send_codes(id_nat: str, network: str) -> str | None:
    """None when codes may be sent for ``id_nat`` now; otherwise why not: ``network`` (the
    requester's network asked too often, any idNat) or ``recent`` (codes for this idNat
    went out less than ``ecps_codes_interval`` ago, or ``ecps_codes_per_id_nat`` times in
    this ``ecps_otp_lifetime`` window — those codes are still valid: refusing never
    leaves the owner without usable codes)."""
    s = settings()
    if not _within("ecps-codes-network", network, "ecps_codes_per_network", HOUR):
        return "network"
    turn = ratelimit.claim("ecps-codes-turn", id_nat, s.ecps_codes_interval)
    db.session.commit()
    if not turn or not _within("ecps-codes-idnat", id_nat, "ecps_codes_per_id_nat",
                               s.ecps_otp_lifetime):
        if not turn:
            audit.record_throttled("ecps.rate_limited", reason="ecps-codes-turn")
            db.session.commit()
        return "recent"
    return None


def may_try_codes(id_nat: str, network: str) -> bool:
    """One submission of activation codes for ``id_nat``: at most ``ecps_otp_attempts``
    per network and ``ecps_otp_attempts_per_id_nat`` from all networks per code lifetime,
    counted atomically before any comparison (concurrent guesses are counted, not
    raced)."""
    lifetime = settings().ecps_otp_lifetime
    return _within("ecps-otp-network", f"{id_nat}@{network}", "ecps_otp_attempts", lifetime) \
        and _within("ecps-otp-idnat", id_nat, "ecps_otp_attempts_per_id_nat", lifetime)
