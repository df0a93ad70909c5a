"""The CIBA card channel's API (``{issuer}/ciba/card/…``, psc.md §7): the desktop tool
(``psc-card``) proves it holds a CPS card by signing with the card's key inside the token
(RSASSA-PKCS1-v1_5 SHA-256), lists that practitioner's pending CARD requests and approves
or denies one. The certificate is validated on every call exactly as for a card login
(``cards.identify``: chain, usage, CRL, active practitioner).

- ``nonce``: a fresh stateless nonce (signed timestamp and random, ``NONCE_LIFETIME``);
- ``pending``: ``{certificate, nonce, signature}``, the signature over
  ``list_message(nonce)`` (``card_messages``) → the requests with the application's
  name, the binding message and the request's ``challenge``;
- ``decide``: ``{certificate, request, decision, signature}``, the signature over
  ``decision_message(request, challenge, decision)`` → the request's new status.

Every refusal is ``{"error", "error_description"}`` with a status and code of ``ERRORS``;
a refused card answers 403 with the reason a card login gives (``errors.REASONS``)."""

from __future__ import annotations

import base64
import functools
import secrets

from flask import Blueprint, current_app, jsonify
from flask_babel import force_locale
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .. import audit, errors, jsonbody, ratelimit
from ..cards import identify, verify
from ..cards.identify import Holder, holder
from ..cards.signature import verifies
from ..errors import Failure, PscError
from ..extensions import db
from ..net import address_prefix, client_address
from ..settings import current as settings
from . import service
from .card_messages import decision_message, list_message
from .models import CibaRequest

api = Blueprint("ciba_card", __name__)

NONCE_LIFETIME = 60
NONCE_SALT = "psc-idp.ciba.card.nonce"
MAX_BODY = 16 * 1024
#: a refused card: the reasons a card login gives (``errors.REASONS``); a revocation status
#: that cannot be checked now is this side's problem (503, retry), the others are the card's
REFUSED = {*verify.REASONS, identify.UNKNOWN} - {"revocation_unknown"}
#: endpoint → HTTP status → the error codes it may answer (besides the success, 405, and
#: 503 ``temporarily_unavailable`` when the database is down)
ERRORS = {
    "pending": {400: {"invalid_request", "invalid_nonce"}, 413: {"invalid_request"},
                403: {"invalid_signature", *REFUSED}, 429: {"too_many_attempts"},
                503: {"revocation_unknown"}},
    "decide": {400: {"invalid_request"}, 403: {"invalid_signature", *REFUSED},
               404: {"unknown_request"}, 410: {"expired"}, 413: {"invalid_request"},
               429: {"too_many_attempts"}, 503: {"revocation_unknown"}},
}

_CERTIFICATE = {"type": "string", "minLength": 1, "maxLength": 8192}
_SIGNATURE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,1024}$"}
SCHEMAS = {
    "pending": {"type": "object", "additionalProperties": False,
                "required": ["certificate", "nonce", "signature"],
                "properties": {"certificate": _CERTIFICATE, "signature": _SIGNATURE,
                               "nonce": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,200}$"}}},
    "decide": {"type": "object", "additionalProperties": False,
               "required": ["certificate", "request", "decision", "signature"],
               "properties": {"certificate": _CERTIFICATE, "signature": _SIGNATURE,
                              "request": {"type": "string", "pattern": "^[A-Za-z0-9_.~-]{1,40}$"},
                              "decision": {"enum": ["approve", "deny"]}}},
}


class CardApiError(PscError):
    """A desktop tool's call is refused: ``code`` is the API error, ``status`` the HTTP one."""

    for_programs = True

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description, error=code, status=status)
        self.code = code


@api.post("/ciba/card/nonce")
def card_nonce():
    return jsonify(nonce=_nonces().dumps(secrets.token_urlsafe(16)),
                   expires_in=NONCE_LIFETIME)


@api.post("/ciba/card/pending")
def card_pending():
    body = _read("pending")
    _check_nonce(body["nonce"])
    found = _holder(body, list_message(body["nonce"]), step="pending")
    pending = service.card_pending(found.id_nat)
    audit.record("ciba.card.listed", id_nat=found.id_nat, card=found.card.fingerprint,
                 requests=[r.id for r in pending])
    db.session.commit()
    return jsonify(requests=[{
        "request": r.id, "client": r.client_name, "binding_message": r.binding_message,
        "expires_at": r.expires_at, "challenge": r.challenge} for r in pending])


@api.post("/ciba/card/decide")
def card_decide():
    body = _read("decide")
    card = _holder(body, None, step="decide")
    found = db.session.get(CibaRequest, body["request"])
    if found is None or not found.real or found.channel != "CARD" \
            or found.id_nat != card.id_nat:
        _refuse("decide", "unknown_request", body["request"])
        raise CardApiError("unknown_request", "no such request for this card", 404)
    message = decision_message(found.id, found.challenge, body["decision"])
    _check_signature(body, message, "decide")
    try:  # decide commits and audits the decision (its detail: the card's fingerprint)
        status = service.decide(found.id, card.id_nat, body["decision"] == "approve",
                                method="card", detail=card.card.fingerprint)
    except service.CibaError as exc:
        audit.record("ciba.card.refused", "failure", id_nat=card.id_nat,
                     client_id=found.client_id, step="decide", reason=exc.code,
                     request=found.id)
        db.session.commit()
        raise CardApiError(exc.code, exc.description, exc.status) from None
    return jsonify(request=found.id, status=status)


# --- checks -----------------------------------------------------------------------------------

def _read(schema: str) -> dict:
    """The body as ``schema`` describes it, within the network's budget."""
    raw = jsonbody.raw_body(MAX_BODY)
    if raw is None:
        raise CardApiError("invalid_request", f"the body is larger than {MAX_BODY} bytes", 413)
    _within_budget()
    try:
        value = jsonbody.parse(raw, 2)
        jsonbody.check(value, _validator(schema))
    except jsonbody.BodyError as exc:
        raise CardApiError("invalid_request", str(exc)) from None
    return value


@functools.cache
def _validator(schema: str):
    return jsonbody.Validator(SCHEMAS[schema])


def _within_budget() -> None:
    """Calls per network (IPv4 /24, IPv6 /64) per 10 minutes, counted before any work."""
    network = address_prefix(client_address())
    allowed = ratelimit.count("ciba-card-network", network, 600) \
        <= settings().ciba_card_rate_per_network
    db.session.commit()
    if not allowed:
        audit.record_throttled("ciba.card.rate_limited", reason="ciba-card-network")
        db.session.commit()
        raise CardApiError("too_many_attempts", "too many calls from this network, retry "
                           "later", 429)


def _nonces() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=NONCE_SALT)


def _check_nonce(nonce: str) -> None:
    try:
        _nonces().loads(nonce, max_age=NONCE_LIFETIME)
    except SignatureExpired:
        raise CardApiError("invalid_nonce", "the nonce has expired: get a new one") from None
    except BadSignature:
        raise CardApiError("invalid_nonce", "this is not a nonce of this server") from None


def _holder(body: dict, message: str | None, step: str) -> Holder:
    """The active practitioner whose valid card signed ``message`` (None: checked later)."""
    found = holder(body["certificate"])
    if isinstance(found, Failure):
        _refuse(step, found.reason, found.detail)
        with force_locale("en"):
            described = str(errors.REASONS[found.reason].message)
        raise CardApiError(found.reason, described,
                           503 if found.reason == "revocation_unknown" else 403)
    if message is not None:
        _check_signature(body, message, step)
    return found


def _check_signature(body: dict, message: str, step: str) -> None:
    encoded = body["signature"]
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        signature = b""
    if not verifies(body["certificate"], message.encode(), signature):
        _refuse(step, "invalid_signature", "")
        raise CardApiError("invalid_signature", "the signature does not verify with the "
                           "card's certificate", 403)


def _refuse(step: str, reason: str, detail: str) -> None:
    """Anyone may post any certificate: failures are audited per network and minute."""
    db.session.rollback()
    audit.record_throttled("ciba.card.refused", step=step, reason=reason, detail=detail[:200])
    db.session.commit()
