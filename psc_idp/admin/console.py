"""The ops console (``/admin/console``): the service's health and signing keys
(``console_status``), clients, practitioners with their sessions, card logins and e-CPS
devices, the audit trail. Ops log in with their CPS card through psc-idp itself; only the
idNats of the ``admins`` setting get in. Every change goes through the same functions as the
CLI and the API, is audited with the admin's idNat, and is confirmed on the next page."""

from __future__ import annotations

import datetime as dt
import time

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import or_, select

from .. import audit, clients, errors
from ..audit import AuditEvent
from ..directory.links import lineage
from ..directory.models import Practitioner
from ..ecps import service as ecps
from ..errors import Failure
from ..extensions import db, idp
from ..oidc import interaction, revocation
from ..oidc.models import Client, LoginSession
from ..settings import current as settings
from . import console_status as status

bp = Blueprint("console", __name__, url_prefix="/admin/console")
REFUSED = Failure("not_admin")
PAGE = 50  # audit records per page


@bp.before_request
def admins_only():
    subject = interaction.current_subject()
    if subject is None or subject.auth_mode != "CARD":
        page = request.endpoint if request.method == "GET" else "console.home"
        tx = interaction.start_account(page if page in interaction.ACCOUNT_PAGES
                                       else "console.home")
        return redirect(interaction.card_url(tx))
    if subject.id_nat not in settings().admins:
        audit.record("console.refused", "failure", id_nat=subject.id_nat, path=request.path)
        db.session.commit()
        return errors.page(REFUSED.reason, 403)
    g.admin = subject.id_nat
    return None


def _actor() -> str:
    return f"console:{g.admin}"


@bp.context_processor
def helpers() -> dict:
    return {"when": status.when, "age": status.age}


def _done(message: str) -> None:
    """The confirmation shown after the redirect (POST-redirect-GET)."""
    flash(message, "success")


def _not_done(message: str) -> None:
    flash(message, "error")


@bp.get("/")
def home():
    cards = idp().cards
    return render_template("console/home.html", checks=status.dashboard(), now=time.time(),
                           keys=status.keys(), crls=cards.crls.snapshot() if cards else [])


@bp.get("/audit/verify")
def audit_verify():
    return render_template("console/audit_verify.html", result=audit.verify(),
                           chain=status.audit_chain())


@bp.get("/clients")
def client_list():
    rows = db.session.scalars(select(Client).order_by(Client.client_id)).all()
    return render_template("console/clients.html", clients=rows,
                           options={c.client_id: protocol_options(c) for c in rows})


def protocol_options(client) -> list[str]:
    """What a client uses beyond the code flow, as the clients page lists it."""
    options = []
    if client.backchannel_token_delivery_mode:
        options.append(f"CIBA {client.backchannel_token_delivery_mode}")
    if client.backchannel_logout_uri:
        options.append(_("back-channel logout"))
    named = (("require_pushed_authorization_requests", "PAR"),
             ("dpop_bound_access_tokens", "DPoP"),
             ("tls_client_certificate_bound_access_tokens", "mTLS"),
             ("fapi2_security_profile", "FAPI 2.0"))
    return options + [label for field, label in named if getattr(client, field)]


@bp.post("/clients/<client_id>/<any(enable, disable):action>")
def client_toggle(client_id, action):
    client = clients.find(client_id)
    if client is None:
        _not_done(_("There is no application %(client_id)s.", client_id=client_id[:64]))
    else:
        clients.set_enabled(client, action == "enable", actor=_actor())
        _done(_("Application %(name)s is enabled.", name=client.name) if client.enabled else
              _("Application %(name)s is disabled: its tokens and unused codes are revoked.",
                name=client.name))
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
        return render_template("console/practitioners.html", q=id_nat[:60], rows=[]), 404
    sessions = db.session.scalars(select(LoginSession).where(
        LoginSession.id_nat == found.id_nat).order_by(LoginSession.auth_time.desc())
        .limit(50)).all()
    return render_template("console/practitioner.html", p=found, now=time.time(),
                           live=[s for s in sessions if _live(s)],
                           cards=[s for s in sessions if s.auth_mode == "CARD"][:20],
                           devices=ecps.devices_of(found.id_nat),
                           formers=lineage(found.id_nat)[1:])


def _live(row: LoginSession) -> bool:
    return row.ended_at is None and row.expires_at >= time.time()


@bp.post("/practitioners/<id_nat>/sessions/revoke")
def revoke_session(id_nat):
    sid, id_nat = request.form.get("sid", "")[:64], id_nat[:40]
    ended, tokens = revocation.end_sessions(
        (LoginSession.sid == sid) & (LoginSession.id_nat == id_nat))
    if ended:
        audit.record("session.revoked", id_nat=id_nat, actor=_actor(),
                     tokens_revoked=tokens[id_nat])
        db.session.commit()
        _done(ngettext("Session ended: %(num)d token revoked with it.",
                       "Session ended: %(num)d tokens revoked with it.", tokens[id_nat]))
    else:
        db.session.rollback()
        _not_done(_("This session had already ended."))
    return redirect(url_for("console.practitioner", id_nat=id_nat), 303)


@bp.post("/practitioners/<id_nat>/devices/<device_id>/revoke")
def revoke_device(id_nat, device_id):
    if ecps.revoke_device(device_id[:40], id_nat[:40], actor=_actor()):
        _done(_("e-CPS device revoked: it can no longer be used to sign in."))
    else:
        _not_done(_("This device is not active: nothing was revoked."))
    return redirect(url_for("console.practitioner", id_nat=id_nat[:40]), 303)


def _timestamp(text: str, end: bool = False) -> int | None:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, dt.UTC)
    return int(moment.timestamp())


def event_names() -> list[str]:
    """The known audit events (``audit.EVENTS``), or those the trail holds."""
    known = getattr(audit, "EVENTS", None)
    if known:
        return sorted(known)
    return list(db.session.scalars(select(AuditEvent.event).distinct()
                                   .order_by(AuditEvent.event)))


@bp.get("/audit")
def audit_log():
    args = {k: request.args.get(k, "").strip()[:64] for k in
            ("id_nat", "client_id", "event", "since", "until")}
    page = request.args.get("page", "1")
    page = min(int(page), 100_000) if page.isdigit() and int(page) > 0 else 1
    query, problems = _filtered(select(AuditEvent), args)
    rows = db.session.scalars(query.order_by(AuditEvent.id.desc())
                              .offset((page - 1) * PAGE).limit(PAGE + 1)).all()
    filters = {k: v for k, v in args.items() if v}
    return render_template("console/audit.html", events=rows[:PAGE], args=args,
                           events_known=event_names(), problems=problems, page=page, page_size=PAGE,
                           newer=url_for("console.audit_log", **filters, page=page - 1)
                           if page > 1 else None,
                           older=url_for("console.audit_log", **filters, page=page + 1)
                           if len(rows) > PAGE else None)


def _filtered(query, args: dict):
    """The query with the filters given, and the dates that were not understood."""
    for name in ("client_id", "event"):
        if args[name]:
            query = query.where(getattr(AuditEvent, name) == args[name])
    if args["id_nat"]:  # with the former idNats linked to it (directory.links)
        query = query.where(AuditEvent.id_nat.in_(lineage(args["id_nat"])))
    problems = []
    for name, end in (("since", False), ("until", True)):
        moment = _timestamp(args[name], end=end) if args[name] else None
        if args[name] and moment is None:
            problems.append(_("“%(value)s” is not a date (YYYY-MM-DD): that filter was "
                              "left out.", value=args[name]))
        elif moment is not None:
            query = query.where(AuditEvent.at <= moment if end else AuditEvent.at >= moment)
    return query, problems
