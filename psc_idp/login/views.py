"""Pages of the login: the login page and the card origin's entry point. The interaction
they serve is the protocol's (``idp().interactions``): these pages only authenticate and
hand the outcome back."""

from __future__ import annotations

import hmac

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from .. import i18n
from ..errors import failure_page
from ..extensions import db, idp
from . import card
from .outcome import Failure

bp = Blueprint("login", __name__)
card_bp = Blueprint("card", __name__)

EXPIRED = Failure("login_expired")
ALREADY = Failure("already_authenticated")

#: why the idNat typed on the login page was refused (``?error=``), closed set: the
#: shape problems of ``directory.identifiers.id_nat_problem`` (``%(digits)s``: how many
#: characters the professional typed, ``?id_nat=``)
ID_NAT_ERRORS = {
    "id_nat": _l("This identifier is not valid."),
    "empty": _l("Type your national identifier (idNat)."),
    "not_digits": _l("An idNat has digits only: 8 followed by your 11-digit RPPS number, or "
                     "0 followed by your 9-digit ADELI number."),
    "rpps_length": _l("This identifier has %(digits)s digits; an idNat from the RPPS has 12: "
                      "8 followed by your 11-digit RPPS number."),
    "adeli_length": _l("This identifier has %(digits)s characters; an idNat from ADELI has "
                       "10: 0 followed by your 9-digit ADELI number."),
    "prefix": _l("An idNat starts with 8 (RPPS) or 0 (ADELI): check the first digit."),
    "check_digit": _l("The check digit does not match: check for a typo."),
    "malformed": _l("This staff identifier is not well formed: check it on your CPS card."),
}
#: what the login page tells after an action of the professional (``?notice=``), closed set
NOTICES = {
    "ecps_cancelled": _l("The e-CPS request was cancelled: your phone no longer shows it."),
}


@bp.get("/login")
def page():
    interactions = idp().interactions
    tx = interactions.pending(request.args.get("tx"))
    if tx is None:
        return failure_page(EXPIRED, 400)
    i18n.use_ui_locales(tx.params.get("ui_locales"))
    id_nat = request.args.get("id_nat", "")[:40]
    error = ID_NAT_ERRORS.get(request.args.get("error", ""))
    return render_template("login.html", card_url=interactions.card_url(tx),
                           client=interactions.client(tx), tx=tx, id_nat=id_nat,
                           error=error and str(error) % {"digits": len(id_nat)},
                           notice=NOTICES.get(request.args.get("notice", "")))


@card_bp.get("/card/login")
def card_login():
    """The card origin: the transaction is the one whose login page gave this link (its
    ``k``), still waiting for its first authentication."""
    interactions = idp().interactions
    tx = interactions.pending(request.args.get("tx"), bound=False)
    key = request.args.get("k", "")
    if tx is None or not hmac.compare_digest(key.encode(), interactions.card_key(tx).encode()):
        return failure_page(EXPIRED, 400)
    i18n.use_ui_locales(tx.params.get("ui_locales"))
    if tx.authenticated_at is not None:
        return failure_page(ALREADY, 400)
    outcome = card.authenticate(request)
    if isinstance(outcome, Failure):
        db.session.commit()  # its audit record
        return failure_page(outcome, 403, tx)
    response = interactions.finished(tx, outcome, across_origins=True)
    return response if response is not None else failure_page(ALREADY, 400)
