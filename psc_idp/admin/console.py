"""The ops console (``/admin/console``, French): clients, practitioners with their card
logins and e-CPS devices, the audit trail, key status. Ops log in with their CPS card
through psc-idp itself; only the idNats of the ``admins`` setting get in. Every change goes
through the same functions as the CLI and the API, and is audited with the admin's idNat."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy import or_, select

from .. import audit, clients, errors
from ..audit import AuditEvent
from ..directory.links import lineage
from ..directory.models import Practitioner
from ..ecps import service as ecps
from ..errors import Failure
from ..extensions import db, idp
from ..login import flow
from ..login.views import card_url
from ..oidc.models import Client, LoginSession
from ..settings import current as settings

bp = Blueprint("console", __name__, url_prefix="/admin/console")
REFUSED = Failure("not_admin")


@bp.before_request
def admins_only():
    subject = flow.current_subject()
    if subject is None or subject.auth_mode != "CARD":
        page = request.endpoint if request.method == "GET" else "console.home"
        tx = flow.start_account(page if page in flow.ACCOUNT_PAGES else "console.home")
        return redirect(card_url(tx))
    if subject.id_nat not in settings().admins:
        audit.record("console.refused", "failure", id_nat=subject.id_nat, path=request.path)
        db.session.commit()
        return errors.page(REFUSED.reason, 403)
    g.admin = subject.id_nat
    return None


def _actor() -> str:
    return f"console:{g.admin}"


@bp.get("/")
def home():
    state = idp()
    health = getattr(state.keys, "health", None)
    return render_template("console/home.html", keys=state.keys.jwks()["keys"],
                           health=health() if callable(health) else None,
                           crls=state.cards.crls.snapshot() if state.cards else [])


@bp.get("/clients")
def client_list():
    rows = db.session.scalars(select(Client).order_by(Client.client_id)).all()
    return render_template("console/clients.html", clients=rows)


@bp.post("/clients/<client_id>/<any(enable, disable):action>")
def client_toggle(client_id, action):
    client = clients.find(client_id)
    if client is not None:
        clients.set_enabled(client, action == "enable", actor=_actor())
    return redirect(url_for("console.client_list"), 303)


@bp.get("/practitioners")
def practitioners():
    q = request.args.get("q", "").strip()[:60]
    rows = []
    if q:
        rows = db.session.scalars(select(Practitioner).where(or_(
            Practitioner.id_nat.startswith(q),
            Practitioner.family_name.ilike(q.replace("%", "") + "%"))).order_by(
            Practitioner.family_name).limit(50)).all()
    return render_template("console/practitioners.html", q=q, rows=rows)


@bp.get("/practitioners/<id_nat>")
def practitioner(id_nat):
    found = db.session.get(Practitioner, id_nat[:40])
    if found is None:
        return render_template("console/practitioners.html", q=id_nat, rows=[]), 404
    cards = db.session.scalars(select(LoginSession).where(
        LoginSession.id_nat == found.id_nat, LoginSession.auth_mode == "CARD").order_by(
        LoginSession.auth_time.desc()).limit(20)).all()
    return render_template("console/practitioner.html", p=found, cards=cards,
                           devices=ecps.devices_of(found.id_nat),
                           formers=lineage(found.id_nat)[1:])


@bp.post("/practitioners/<id_nat>/devices/<device_id>/revoke")
def revoke_device(id_nat, device_id):
    ecps.revoke_device(device_id[:40], id_nat[:40], actor=_actor())
    return redirect(url_for("console.practitioner", id_nat=id_nat[:40]), 303)


def _timestamp(text: str, end: bool = False) -> int | None:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, dt.UTC)
    return int(moment.timestamp())


@bp.get("/audit")
def audit_log():
    args = {k: request.args.get(k, "").strip()[:64] for k in
            ("id_nat", "client_id", "event", "since", "until")}
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)
    for field in ("client_id", "event"):
        if args[field]:
            query = query.where(getattr(AuditEvent, field) == args[field])
    if args["id_nat"]:  # with the former idNats linked to it (directory.links)
        query = query.where(AuditEvent.id_nat.in_(lineage(args["id_nat"])))
    since, until = _timestamp(args["since"]), _timestamp(args["until"], end=True)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at <= until)
    return render_template("console/audit.html", events=db.session.scalars(query).all(),
                           args=args)
