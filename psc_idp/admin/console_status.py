"""The console's dashboard: each part of the service as a readable status (OK, warning or
failure, with a sentence): the database, signing keys and CRLs as ``/readyz`` checks them
(``ops.readiness``), the audit chain's progress as ``psc-idp audit verify`` alerts on it,
and the e-CPS channel; the signing keys with their life (``keys.lifecycle``)."""

from __future__ import annotations

import datetime as dt
import socket
import time
from dataclasses import dataclass, field

from flask import request
from flask_babel import format_timedelta, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from .. import i18n, ops, origins
from ..audit import AuditCheckpoint, AuditEvent, AuditHead
from ..extensions import db, idp
from ..settings import current as settings

OK, WARNING, FAILURE = "ok", "warning", "failure"
LEVELS = {OK: _l("OK"), WARNING: _l("Warning"), FAILURE: _l("Failure")}
KEY_STATES = {"next": _l("next"), "active": _l("active"), "retiring": _l("retiring"),
              "retired": _l("retired"), "removed": _l("removed")}
PROBE_TIMEOUT = 0.5  # seconds to wait for the e-CPS channel to accept a connection


@dataclass
class Status:
    name: str
    title: str
    level: str
    message: str
    details: list[str] = field(default_factory=list)
    technical: list[str] = field(default_factory=list)  # what the code says, in English

    @property
    def label(self) -> str:
        return str(LEVELS[self.level])


def when(timestamp: float | None) -> str:
    """A date and time in a table, in the page's language (French: 01/12/2026 23:34)."""
    return i18n.moment(timestamp, i18n.SHORT)


def age(seconds: float) -> str:
    return format_timedelta(dt.timedelta(seconds=abs(seconds)), threshold=1)


def dashboard() -> list[Status]:
    checks = ops.readiness()
    return [database(checks["database"]), signing_keys(checks["keys"]), crls(checks["crl"]),
            audit_chain(), ecps_channel()]


def database(check: dict) -> Status:
    title = _("Database")
    if check.get("ok"):
        return Status("database", title, OK, _("The database answers."))
    return Status("database", title, FAILURE, _(
        "The database does not answer (%(error)s): nothing can be signed in or issued.",
        error=check.get("error", "?")))


def signing_keys(check: dict) -> Status:
    title = _("Signing keys")
    algorithms = ", ".join(check.get("algorithms", []))
    if check.get("ok"):
        return Status("keys", title, OK, _(
            "Every key in service signs, and its signature verifies (%(algorithms)s).",
            algorithms=algorithms))
    problems = [f"{name}: {text}" for name, text in check.get("problems", {}).items()]
    return Status("keys", title, FAILURE, _(
        "Some signing keys cannot sign: tokens may not be issued. See 'psc-idp keys list'."),
        technical=problems)


def crls(check: dict) -> Status:
    title, state = _("Certificate revocation lists (CRL)"), idp()
    if state.cards is None:
        return Status("crl", title, WARNING, _("Card logins are not configured: no CRL."))
    if check.get("stale"):
        return Status("crl", title, FAILURE, _(
            "Out of date beyond their grace period: %(sources)s. Fetch them again.",
            sources=", ".join(check["stale"])))
    if not check.get("ok"):
        return Status("crl", title, FAILURE, _("No CRL is loaded, though card_crls lists some."))
    now = time.time()
    late = [c.source for c in state.cards.crls.snapshot()
            if c.next_update is not None and now > c.next_update]
    if late:
        return Status("crl", title, WARNING, _(
            "Past their next update, still used during the grace period: %(sources)s.",
            sources=", ".join(late)))
    count = check.get("loaded", 0)
    return Status("crl", title, OK, ngettext("%(num)d CRL loaded, up to date.",
                                             "%(num)d CRLs loaded, all up to date.", count))


def audit_chain() -> Status:
    """What ``audit_verify`` alerts on, read cheaply (the full walk: its own page)."""
    title, config, now = _("Audit chain"), settings(), int(time.time())
    head = db.session.get(AuditHead, 1)
    chained = head.seq if head else 0
    pending, oldest = db.session.execute(select(func.count(), func.min(AuditEvent.at))
                                         .where(AuditEvent.hash.is_(None))).one()
    if pending and oldest < now - config.audit_unchained_alert:
        return Status("audit", title, FAILURE, ngettext(
            "%(num)d record has waited more than %(delay)s to be chained: is a sequencer "
            "running?", "%(num)d records have waited more than %(delay)s to be chained: is a "
            "sequencer running?", pending, delay=age(config.audit_unchained_alert)))
    last = db.session.execute(select(AuditCheckpoint.chain_seq, AuditCheckpoint.at)
                              .order_by(AuditCheckpoint.chain_seq.desc()).limit(1)).first()
    covered = last.chain_seq if last else 0
    uncovered = db.session.scalar(select(func.min(AuditEvent.at))
                                  .where(AuditEvent.chain_seq > covered))
    if uncovered is not None and \
            uncovered < now - config.audit_checkpoint_interval - config.audit_unchained_alert:
        return Status("audit", title, FAILURE, _(
            "No signed checkpoint covers the records written since %(date)s: is the "
            "signing key available?", date=when(uncovered)))
    details = [_("Last signed checkpoint: record %(seq)d, %(date)s.", seq=last.chain_seq,
                 date=when(last.at))] if last else []
    return Status("audit", title, OK, ngettext(
        "%(num)d record chained, %(pending)d waiting.",
        "%(num)d records chained, %(pending)d waiting.", chained, pending=pending), details)


def ecps_channel() -> Status:
    """Where the phones' long poll waits: ``psc-idp run``'s own listener, or
    ``psc-idp ecps channel`` on ``ecps_channel_listen`` behind nginx."""
    title, address = _("e-CPS channel"), settings().ecps_channel_listen
    if request.environ.get(origins.ENVIRON_KEY):
        return Status("ecps", title, OK, _(
            "psc-idp run serves the phones' channel on its own listener."))
    if _answers(address):
        return Status("ecps", title, OK, _("The e-CPS channel answers on %(address)s.",
                                           address=address))
    return Status("ecps", title, WARNING, _(
        "Nothing answers on %(address)s (ecps_channel_listen): waiting phones take the "
        "application's few threads (ecps_poll_threads). Start 'psc-idp ecps channel'.",
        address=address))


def _answers(address: str) -> bool:
    if address.startswith("unix:"):
        family, target = socket.AF_UNIX, address.removeprefix("unix:")
    else:
        host, _sep, port = address.rpartition(":")
        family, target = socket.AF_INET6 if ":" in host else socket.AF_INET, \
            (host.strip("[]"), int(port))
    with socket.socket(family) as probe:
        probe.settimeout(PROBE_TIMEOUT)
        try:
            probe.connect(target)
            return True
        except OSError:
            return False


def keys() -> list[dict]:
    """The key ring's entries, newest first, with ``retiring`` for an active key whose
    successor is waiting (its ``retire_at`` is set)."""
    rows = []
    for entry in idp().keys.entries():
        state = entry["state"]
        if state == "active" and "retire_at" in entry:
            state = "retiring"
        rows.append({"kid": entry["kid"], "alg": entry["alg"], "state": state,
                     "state_label": str(KEY_STATES.get(state, state)),
                     "backend": entry.get("backend", "file"), "created": entry["created"],
                     "activate_at": entry.get("activate_at", entry["created"]),
                     "retire_at": entry.get("retire_at"), "remove_at": entry.get("remove_at")})
    return sorted(rows, key=lambda row: row["created"], reverse=True)
