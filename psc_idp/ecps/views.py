"""e-CPS pages: login by number matching, activation, devices (the phone app's API is
``api``, registered with them)."""

from __future__ import annotations

import re
import time

import segno
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import i18n
from ..directory.identifiers import id_nat_problem
from ..errors import failure_page
from ..extensions import db, idp
from ..login.outcome import Failure, Success
from ..login.views import EXPIRED
from ..settings import current as settings
from . import browser_phone, limits, service
from .api import api  # noqa: F401 (registered by create_app with the pages)
from .models import LoginRequest
from .signed import identifier

bp = Blueprint("ecps", __name__)

#: what the activation-code form accepts (the same answer whatever the directory knows)
ID_NAT = re.compile(r"^[0-9A-Za-z/-]{1,40}$")
TOO_MANY = Failure("rate_limited")
#: the login page's status of a request that did not succeed → what the failure page says
ENDED = {"denied": Failure("ecps_denied"), "wrong_code": Failure("ecps_wrong_code"),
         "cancelled": Failure("ecps_cancelled"), "expired": Failure("ecps_expired")}
#: dates on the device pages, per page language (Babel patterns: "1 déc. 2026 à 23:05")
# --- login ------------------------------------------------------------------------------

@bp.post("/login/ecps")
def login():
    interactions = idp().interactions
    tx = interactions.pending(request.form.get("tx"))
    if tx is None or interactions.account_page(tx):
        return failure_page(EXPIRED, 400)
    i18n.use_ui_locales(tx.params.get("ui_locales"))
    id_nat = request.form.get("id_nat", "").strip()
    problem = id_nat_problem(id_nat)
    if problem:  # a typo: said at once, before any request, counter or wait
        return redirect(url_for("login.page", tx=tx.id, error=problem, id_nat=id_nat[:40]),
                        303)
    network = limits.requester()
    if not limits.may_request_login(id_nat, network):
        return failure_page(TOO_MANY, 429, tx)
    client = interactions.client(tx)
    login_request = service.start_login(tx.id, tx.client_id, id_nat,
                                        client.name if client else "", network)
    return redirect(url_for("ecps.wait", tx=tx.id, r=login_request.id), 303)


def _bound_request() -> tuple:
    """The transaction and login request of this browser (query or form), or (None, None)."""
    tx = idp().interactions.pending(request.values.get("tx"))
    rid = identifier(request.values.get("r"), 40)
    login_request = db.session.get(LoginRequest, rid) if tx and rid else None
    if login_request is None or login_request.tx_id != tx.id:
        return None, None
    return tx, login_request


@bp.get("/login/ecps/wait")
def wait():
    tx, login_request = _bound_request()
    if login_request is None:
        return failure_page(EXPIRED, 400)
    i18n.use_ui_locales(tx.params.get("ui_locales"))
    return render_template(
        "ecps_wait.html", code=login_request.code, tx=tx, r=login_request.id,
        seconds=max(0, login_request.expires_at - int(time.time())),
        status_url=url_for("ecps.status", tx=tx.id, r=login_request.id),
        done_url=url_for("ecps.done", tx=tx.id, r=login_request.id),
        card_url=idp().interactions.card_url(tx), app_link=browser_phone.app_link(login_request.id)
        if browser_phone.on_phone() else None)


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
        return failure_page(EXPIRED, 400)
    i18n.use_ui_locales(tx.params.get("ui_locales"))
    state = service.settled_status(login_request)
    if state == "pending":
        return redirect(url_for("ecps.wait", tx=tx.id, r=login_request.id))
    if state != "approved" or login_request.status != "approved":
        return failure_page(ENDED.get(state, EXPIRED), 403, tx)
    outcome = Success.now(login_request.id_nat, "ecps", login_request.device_id or "")
    response = idp().interactions.finished(tx, outcome) if service.use(login_request) \
        else None  # None unless this is the first completion
    return response if response is not None else failure_page(EXPIRED, 400)


@bp.post("/login/ecps/cancel")
def cancel():
    """The waiting page's Cancel: the request ends (the phone no longer shows it) and the
    login page is shown again; a request already answered goes on to its outcome."""
    tx, login_request = _bound_request()
    if login_request is None:
        return failure_page(EXPIRED, 400)
    if not service.cancel(login_request, tx.client_id):
        return redirect(url_for("ecps.done", tx=tx.id, r=login_request.id), 303)
    return redirect(url_for("login.page", tx=tx.id, notice="ecps_cancelled"), 303)


# --- activation and devices (after a card login) ------------------------------------------

def _card_subject(page: str):
    interactions = idp().interactions
    subject = interactions.current_subject()
    if subject is not None and subject.auth_mode == "CARD":
        return subject, None
    tx = interactions.start_account(page)
    return None, redirect(interactions.card_url(tx))


@bp.get("/ecps/activate")
def activate():
    subject, login = _card_subject("ecps.activate")
    if login is not None:
        return login
    secret = service.start_qr_activation(subject.id_nat)
    text = service.qr_text(secret)
    qr = segno.make(text, error="m")  # quiet zone of 4 modules on white (ISO/IEC 18004)
    svg = qr.svg_inline(scale=5, border=4, dark="#000", light="#fff", omitsize=True,
                        svgclass="ecps-qr", title=_("e-CPS activation QR code"))
    return render_template("ecps_activate.html", text=text, qr_svg=svg,
                           seconds=settings().ecps_qr_lifetime)


@bp.route("/ecps/activate/codes", methods=["GET", "POST"])
def activate_codes():
    if request.method == "GET":
        return render_template("ecps_codes.html", sent=False)
    id_nat = request.form.get("id_nat", "").strip()
    if not ID_NAT.match(id_nat):  # loose: the answer must not depend on the shape
        return render_template("ecps_codes.html", sent=False, error=True), 400
    if not service.codes_offered(id_nat):
        service.start_code_activation(id_nat)  # audited; sends nothing
        return render_template("ecps_codes.html", sent=False, card_only=True), 403
    refused = limits.may_send_codes(id_nat, limits.requester())
    if refused == "network":
        return failure_page(TOO_MANY, 429)
    if refused:  # codes went out moments ago: they are still valid
        return render_template("ecps_codes.html", sent=False, recent=True,
                               minutes=settings().ecps_otp_lifetime // 60), 429
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
    device_id = identifier(device_id, 40)
    if device_id:
        service.revoke_device(device_id, subject.id_nat)
    return redirect(url_for("ecps.devices", revoked=device_id), 303)
