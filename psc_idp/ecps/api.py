"""The phone app's API (``/ecps/api/…``): activation, the pending requests (long poll),
decisions, the professional's devices. Bodies are checked at the edge (``body``); every
refusal is ``{"error", "error_description"}`` with one of the statuses and codes of
``ERRORS`` (README "The phone app's API"). A waiting poll is held by the e-CPS channel
(``channel``) without a thread; elsewhere (gunicorn reached directly) by a thread, at most
``ecps_poll_threads`` at a time per process."""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

from flask import Blueprint, current_app, jsonify, request

from ..extensions import db
from ..settings import current as settings
from . import body, limits, service
from .signed import EcpsError

api = Blueprint("ecps_api", __name__)

_DEVICE = {401: {"invalid_token", "unknown_device"}}
#: endpoint → HTTP status → the API error codes it may answer (besides the success, 405 for
#: another method, and 503 ``temporarily_unavailable`` when the database is down or, for
#: ``pending``, when a process without the channel holds all its ``ecps_poll_threads``)
ERRORS = {
    "activate": {400: {"invalid_request", "invalid_key", "invalid_activation",
                       "too_many_devices"},
                 403: {"card_activation_required"}, 413: {"invalid_request"},
                 429: {"too_many_attempts"}},
    "pending": {400: {"invalid_request"}, **_DEVICE},
    "decision": {400: {"invalid_request"}, **_DEVICE, 404: {"unknown_request"},
                 409: {"already_decided"}, 410: {"expired"}, 413: {"invalid_request"}},
    "devices": _DEVICE,
}


def _device():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "ECPS" or not token.strip():
        raise EcpsError("invalid_token", "Authorization: ECPS <signed message> required", 401)
    device = service.authenticate_device(token.strip())
    db.session.commit()
    return device


@api.post("/ecps/api/activate")
def api_activate():
    device = service.activate(body.read("activation"), limits.requester())
    return jsonify(device_id=device.id, id_nat=device.id_nat, label=device.label), 201


#: environ keys: the channel marks the polls it holds (``HELD_BY_CHANNEL``); the view leaves
#: a ``Hold`` there (``HOLD``) when the phone is to wait
HELD_BY_CHANNEL = "psc_idp.ecps.channel"
HOLD = "psc_idp.ecps.hold"
_POLL_THREADS = "psc_idp.ecps.poll_threads"  # app.extensions: the threads' semaphore


class Hold(NamedTuple):
    """A phone to keep waiting until ``deadline`` (``time.monotonic()``)."""

    device_id: str
    id_nat: str
    deadline: float


@api.get("/ecps/api/pending")
def api_pending():
    """Long poll: answers as soon as a request is pending, or after ``wait`` seconds."""
    wait = request.args.get("wait", "0")
    if not (wait.isascii() and wait.isdigit() and len(wait) <= 4):
        raise EcpsError("invalid_request", "wait must be an integer from 0 to 25")
    device = _device()
    hold = Hold(device.id, device.id_nat, time.monotonic() + min(int(wait), 25))
    pending = service.pending_for(device)
    db.session.rollback()  # end the read transaction so new rows become visible
    if pending or time.monotonic() >= hold.deadline:
        return jsonify(requests=pending)
    if request.environ.get(HELD_BY_CHANNEL):
        request.environ[HOLD] = hold
        return jsonify(requests=[])  # the answer if nothing comes
    return _wait_in_thread(device, hold.deadline)


def _wait_in_thread(device, deadline: float):
    """Without the channel a waiting phone holds a thread: a few per process at most, the
    others are told to come back (their phone app backs off as for a database outage)."""
    threads = current_app.extensions.setdefault(
        _POLL_THREADS, threading.BoundedSemaphore(settings().ecps_poll_threads))
    if not threads.acquire(blocking=False):
        response = jsonify(error="temporarily_unavailable",
                           error_description="too many phones waiting, retry shortly")
        response.status_code, response.headers["Retry-After"] = 503, "5"
        return response
    try:
        pending = []
        while not pending and time.monotonic() < deadline:
            time.sleep(0.25)
            pending = service.pending_for(device)
            db.session.rollback()
        return jsonify(requests=pending)
    finally:
        threads.release()


@api.post("/ecps/api/decision")
def api_decision():
    decided = service.decide(body.read("decision")["decision"])
    return jsonify(request=decided.id, status=service.browser_status(decided))


@api.get("/ecps/api/devices")
def api_devices():
    device = _device()
    return jsonify(devices=[{
        "device_id": d.id, "label": d.label, "status": d.status, "created_at": d.created_at,
        "last_used_at": d.last_used_at, "this_device": d.id == device.id,
    } for d in service.devices_of(device.id_nat)])
