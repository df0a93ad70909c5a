"""The sandbox's e-CPS phone in the browser (``/ecps/phone``, never in production), and the
app link that opens the e-CPS app on the phone that is signing in (psc.md §6: "login from
the phone's own browser must work too").

The page is static script over the phone app's own API (``api``: activate, pending,
decision), exactly as ``psc-ecps`` speaks it: its key is a WebCrypto P-256 key made in the
browser with ``extractable: false`` and kept in IndexedDB; only the public JWK is sent."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Blueprint, Flask, abort, render_template, request
from flask_babel import gettext as _

from ..settings import Settings
from ..settings import current as settings
from .signed import identifier

bp = Blueprint("phone", __name__)

#: the app link's scheme and action, as the e-CPS app (and ``psc-ecps --link``) reads it
APP_LINK = "psc-ecps://approve"
#: user agents of phones and tablets, whose login page offers to open the app on the device
_PHONE = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.I)


def register(app: Flask, settings: Settings, prefix: str) -> None:
    """The phone page exists in the sandbox only: a production IdP has no such route."""
    if settings.mode != "production":
        app.register_blueprint(bp, url_prefix=prefix)


@bp.before_request
def sandbox_only():
    if settings().mode == "production":
        abort(404)


@bp.get("/ecps/phone")
def phone():
    """The phone; ``?request=<id>`` (from an app link) puts that login request first."""
    return render_template("phone/phone.html", issuer=settings().issuer,
                           wanted=identifier(request.args.get("request"), 40),
                           messages=_messages())


def app_link(request_id: str) -> str:
    """The link that opens the e-CPS app on this device at one login request: in the
    sandbox, the browser phone's page; otherwise the app's own scheme."""
    issuer = settings().issuer
    if settings().mode != "production":
        return f"{issuer}/ecps/phone?" + urlencode({"request": request_id})
    return f"{APP_LINK}?" + urlencode({"issuer": issuer, "request": request_id})


def on_phone() -> bool:
    """Whether this request's browser runs on a phone or tablet (its user agent)."""
    return bool(_PHONE.search(request.headers.get("User-Agent", "")[:512]))


def _messages() -> dict[str, str]:
    """What the page's script says, in the page's language."""
    return {
        "activated": _("This phone is activated for %(id_nat)s."),
        "activating": _("Activating…"),
        "approved": _("Approved: the sign-in page continues by itself."),
        "denied": _("Refused: the sign-in will not go through."),
        "wrong_code": _("This was not the code shown on the sign-in page: the sign-in is "
                        "refused."),
        "expired": _("This request has expired or was replaced by a newer one."),
        "already_decided": _("This request was already answered."),
        "no_request": _("No sign-in request is waiting."),
        "wanted_gone": _("The request this link opened is no longer waiting."),
        "new_request": _("New sign-in request from %(app)s."),
        "unknown_app": _("an application"),
        "pin_format": _("The PIN must be at least 4 digits."),
        "pin_mismatch": _("The two PINs differ."),
        "pin_wrong": _("Wrong PIN: %(left)s attempt(s) left before this phone forgets its "
                       "key."),
        "pin_wiped": _("Wrong PIN too many times: the key was deleted. Activate this phone "
                       "again."),
        "pick_code": _("Pick the code shown on the sign-in page."),
        "qr_invalid": _("This is not an e-CPS activation QR code."),
        "qr_other": _("This QR code is for another server."),
        "no_crypto": _("This browser cannot keep a key safely here (WebCrypto and IndexedDB "
                       "over HTTPS are needed)."),
        "unreachable": _("The server cannot be reached, retrying…"),
        "revoked": _("This phone was revoked or is not known any more: activate it again."),
        "failed": _("Refused by the server: %(error)s"),
        "forgotten": _("This phone forgot its e-CPS."),
        "label": _("Browser phone (sandbox)"),
        "request_from": _("Asked from the network %(network)s."),
        "activation_invalid_activation": _("These codes or this QR code are not valid, "
                                           "or no longer valid."),
        "activation_too_many_attempts": _("Too many attempts: wait a while, then try "
                                          "again."),
        "activation_too_many_devices": _("Too many devices are activated: revoke one "
                                         "first."),
        "activation_card_activation_required": _("Activate with your card: activation by "
                                                 "codes is not offered to you."),
        "activation_invalid_request": _("Give the QR code, or your idNat with both "
                                        "8-digit codes."),
    }
