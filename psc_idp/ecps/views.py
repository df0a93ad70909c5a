"""e-CPS pages (login by number matching, activation, devices) and the phone app's API."""

from __future__ import annotations

import re
import time

import segno
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from .. import ratelimit
from ..extensions import db
from ..login import flow
from ..login.outcome import Failure, Success
from ..login.views import EXPIRED, card_url
from ..net import client_address
from ..oidc.authorize import resume
from ..oidc.models import Client
from . import service
from .models import LoginRequest
from .service import EcpsError

bp = Blueprint("ecps", __name__)
api = Blueprint("ecps_api", __name__)

ID_NAT = re.compile(r"^[0-9A-Za-z/]{1,40}$")
TOO_MANY = Failure("rate_limited", "Trop de tentatives. Patientez quelques minutes.",
                   "Too many attempts. Wait a few minutes.")
DENIED = Failure("ecps_denied", "La connexion a été refusée depuis l'application e-CPS.",
                 "The login was refused from the e-CPS app.")
REQUEST_EXPIRED = Failure("ecps_expired", "La demande n'a pas été validée à temps dans "
                          "l'application e-CPS. Recommencez.",
                          "The request was not approved in time in the e-CPS app. "
                          "Start again.")


def settings():
    return current_app.extensions["psc_idp"].settings


def _limited(name: str, subject: str, setting: str) -> bool:
    allowed = ratelimit.hit(name, subject, settings()[setting])  # subject: idNat or address
    db.session.commit()
    return not allowed


# --- login ------------------------------------------------------------------------------

@bp.post("/login/ecps")
def login():
    tx = flow.pending(request.form.get("tx"))
    if tx is None or flow.account_page(tx):
        return render_template("failure.html", failure=EXPIRED), 400
    id_nat = request.form.get("id_nat", "").strip()
    if not ID_NAT.match(id_nat):
        return redirect(url_for("login.page", tx=tx.id, error="id_nat"), 303)
    if _limited("ecps-login-address", client_address() or "?", "ecps_rate_per_address") \
            or _limited("ecps-login-idnat", id_nat, "ecps_rate_per_id_nat"):
        return render_template("failure.html", failure=TOO_MANY), 429
    client = db.session.get(Client, tx.client_id)
    login_request = service.start_login(tx, id_nat, client.name if client else "")
    return redirect(url_for("ecps.wait", tx=tx.id, r=login_request.id), 303)


def _bound_request() -> tuple:
    """The transaction and login request of this browser, or (None, None)."""
    tx = flow.pending(request.args.get("tx"))
    rid = request.args.get("r", "")[:40]
    login_request = db.session.get(LoginRequest, rid) if tx and rid else None
    if login_request is None or login_request.tx_id != tx.id:
        return None, None
    return tx, login_request


@bp.get("/login/ecps/wait")
def wait():
    tx, login_request = _bound_request()
    if login_request is None:
        return render_template("failure.html", failure=EXPIRED), 400
    return render_template(
        "ecps_wait.html", code=login_request.code, tx=tx, r=login_request.id,
        seconds=max(0, login_request.expires_at - int(time.time())),
        status_url=url_for("ecps.status", tx=tx.id, r=login_request.id),
        done_url=url_for("ecps.done", tx=tx.id, r=login_request.id),
        card_url=card_url(tx))


@bp.get("/login/ecps/status")
def status():
    _, login_request = _bound_request()
    if login_request is None:
        return jsonify(status="unknown"), 404
    response = jsonify(status=service.browser_status(login_request))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/login/ecps/done")
def done():
    tx, login_request = _bound_request()
    if login_request is None:
        return render_template("failure.html", failure=EXPIRED), 400
    state = service.browser_status(login_request)
    if state == "pending":
        return redirect(url_for("ecps.wait", tx=tx.id, r=login_request.id))
    if state != "approved" or login_request.status != "approved":
        failure = DENIED if state == "denied" else (REQUEST_EXPIRED if state == "expired"
                                                    else EXPIRED)
        return render_template("failure.html", failure=failure, retry_ecps=True), 403
    login_request.status = "used"
    outcome = Success(login_request.id_nat, "ecps", login_request.device_id or "")
    handoff = flow.authenticated(tx, outcome)
    subject = flow.complete(tx, handoff)
    return resume(tx, subject)


# --- activation and devices (after a card login) ------------------------------------------

def _card_subject(page: str):
    subject = flow.current_subject()
    if subject is not None and subject.auth_mode == "CARD":
        return subject, None
    tx = flow.start_account(page)
    return None, redirect(card_url(tx))


@bp.get("/ecps/activate")
def activate():
    subject, login = _card_subject("ecps.activate")
    if login is not None:
        return login
    secret = service.start_qr_activation(subject.id_nat)
    text = service.qr_text(secret)
    qr = segno.make(text, error="m")
    return render_template("ecps_activate.html", text=text,
                           qr_svg=qr.svg_inline(scale=5, title="QR code e-CPS"),
                           seconds=settings()["ecps_qr_lifetime"])


@bp.route("/ecps/activate/codes", methods=["GET", "POST"])
def activate_codes():
    if request.method == "GET":
        return render_template("ecps_codes.html", sent=False)
    id_nat = request.form.get("id_nat", "").strip()
    if not ID_NAT.match(id_nat):
        return render_template("ecps_codes.html", sent=False, error=True), 400
    if not service.codes_offered(id_nat):
        service.start_code_activation(id_nat)  # audited; sends nothing
        return render_template("ecps_codes.html", sent=False, card_only=True), 403
    if _limited("ecps-activation-address", client_address() or "?",
                "ecps_rate_per_address") or _limited("ecps-activation-idnat", id_nat,
                                                     "ecps_rate_per_id_nat"):
        return render_template("failure.html", failure=TOO_MANY), 429
    service.start_code_activation(id_nat)
    return render_template("ecps_codes.html", sent=True, id_nat=id_nat)


@bp.get("/ecps/devices")
def devices():
    subject, login = _card_subject("ecps.devices")
    if login is not None:
        return login
    return render_template("ecps_devices.html", devices=service.devices_of(subject.id_nat),
                           revoked=request.args.get("revoked"))


@bp.post("/ecps/devices/<device_id>/revoke")
def revoke(device_id: str):
    subject, login = _card_subject("ecps.devices")
    if login is not None:
        return login
    service.revoke_device(device_id[:40], subject.id_nat)
    return redirect(url_for("ecps.devices", revoked=device_id[:40]), 303)


# --- the phone app's API --------------------------------------------------------------------

@api.errorhandler(EcpsError)
def api_error(error: EcpsError):
    db.session.rollback()
    return jsonify(error=error.code, error_description=error.description), error.status


def _device():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "ECPS" or not token:
        raise EcpsError("invalid_token", "Authorization: ECPS <signed message> required", 401)
    device = service.authenticate_device(token.strip())
    db.session.commit()
    return device


def _json() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise EcpsError("invalid_request", "a JSON object is required")
    return body


@api.post("/ecps/api/activate")
def api_activate():
    device = service.activate(_json())
    return jsonify(device_id=device.id, id_nat=device.id_nat, label=device.label), 201


@api.get("/ecps/api/pending")
def api_pending():
    """Long poll: answers as soon as a request is pending, or after ``wait`` seconds."""
    device = _device()
    try:
        wait_for = min(max(int(request.args.get("wait", "0")), 0), 25)
    except ValueError:
        raise EcpsError("invalid_request", "wait must be an integer") from None
    deadline = time.monotonic() + wait_for
    while True:
        pending = service.pending_for(device)
        db.session.rollback()  # end the read transaction so new rows become visible
        if pending or time.monotonic() >= deadline:
            return jsonify(requests=pending)
        time.sleep(0.25)


@api.post("/ecps/api/decision")
def api_decision():
    decided = service.decide(str(_json().get("decision", "")))
    return jsonify(request=decided.id, status=service.browser_status(decided))


@api.get("/ecps/api/devices")
def api_devices():
    device = _device()
    return jsonify(devices=[{
        "device_id": d.id, "label": d.label, "status": d.status, "created_at": d.created_at,
        "last_used_at": d.last_used_at, "this_device": d.id == device.id,
    } for d in service.devices_of(device.id_nat)])
