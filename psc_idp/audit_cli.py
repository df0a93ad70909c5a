"""``psc-idp audit``: verify the hash chain, export records and checkpoints as JSON lines,
purge old records."""

from __future__ import annotations

import datetime as dt
import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from . import audit
from .cli_support import iso
from .extensions import db
from .settings import current as settings


def _moment(text: str) -> int:
    """A date (2026-11-23), a date-time (2026-11-23T10:00) or epoch seconds."""
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: use 2026-11-23, 2026-11-23T10:00 or epoch "
                                 "seconds") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


@click.group("audit", help="The audit trail: verify, export, checkpoints, purge.")
def audit_cli():
    pass


@audit_cli.command("verify")
@click.option("--checkpoint", "files", multiple=True, type=click.File("r"),
              help="a file of exported checkpoints ('audit checkpoints --export') the chain "
                   "must still match (repeatable)")
@with_appcontext
def verify_cmd(files):
    """Check the hash chain against its head, the stored checkpoints and the given ones;
    exit 1 naming the first bad record, or when records stay unchained or uncovered by a
    checkpoint for too long."""
    from .audit_checkpoint import CheckpointError, Reader

    reader = Reader()
    try:
        given = [reader.line(line, f"{handle.name}:{number}") for handle in files
                 for number, line in enumerate(handle, 1) if line.strip()]
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from exc
    result = audit.verify(checkpoints=given)
    if not result.ok:
        raise click.ClickException(f"audit chain broken after {result.checked} good "
                                   f"record(s): {result.problem}")
    click.echo(f"audit chain intact: {result.checked} record(s), {result.checkpoints} "
               f"checkpoint(s) matched, {result.pending} record(s) not chained yet")
    if result.alerts:
        raise click.ClickException("; ".join(result.alerts))


def _event(ctx, param, value: str | None) -> str | None:
    if value is not None and value not in audit.EVENTS:
        raise click.BadParameter(f"unknown event {value!r}; valid: "
                                 f"{', '.join(audit.EVENTS)}", ctx, param)
    return value


EVENTS_HELP = "\b\nEvents (--event):\n" + "\n".join(
    f"  {name:<24} {meaning}" for name, meaning in audit.EVENTS.items())


@audit_cli.command("export", epilog=EVENTS_HELP)
@click.option("--since", required=True,
              help="date, date-time (2026-12-01T23:05:00Z; UTC if no offset) or epoch seconds")
@click.option("--until", default=None, help="the same forms as --since")
@click.option("--event", default=None, callback=_event,
              help="only this event (the list below)")
@click.option("--id-nat", default=None,
              help="this idNat and the former idNats linked to it (e.g. its old ADELI)")
@click.option("--client-id", default=None)
@with_appcontext
def export_cmd(since, until, event, id_nat, client_id):
    """Print the records as JSON lines (oldest first); their time, "at", in ISO 8601 UTC
    (2026-12-01T23:05:00Z)."""
    from .directory.links import lineage

    query = select(audit.AuditEvent).where(audit.AuditEvent.at >= _moment(since))
    if until:
        query = query.where(audit.AuditEvent.at <= _moment(until))
    for column, value in (("event", event), ("client_id", client_id)):
        if value:
            query = query.where(getattr(audit.AuditEvent, column) == value)
    if id_nat:
        query = query.where(audit.AuditEvent.id_nat.in_(lineage(id_nat)))
    query = query.order_by(audit.AuditEvent.seq).execution_options(yield_per=2000)
    result = db.session.execute(query)
    try:
        for entry in result.scalars():
            click.echo(json.dumps({**entry.content(), "at": iso(entry.at),
                                   "chain_seq": entry.chain_seq,
                                   "hash": entry.hash}, ensure_ascii=False))
    finally:
        result.close()


@audit_cli.command("checkpoints")
@click.option("--export", "as_json", is_flag=True,
              help="JSON lines (with the signing public key) for 'audit verify --checkpoint'")
@click.option("--latest", is_flag=True, help="only the newest checkpoint")
@with_appcontext
def checkpoints_cmd(as_json, latest):
    """The signed checkpoints of the chain's head, oldest first. Keep exported ones away
    from the database: 'audit verify --checkpoint FILE' then catches a rewritten chain."""
    from .audit_checkpoint import export_line

    query = select(audit.AuditCheckpoint).order_by(audit.AuditCheckpoint.chain_seq)
    if latest:
        query = query.order_by(None).order_by(audit.AuditCheckpoint.chain_seq.desc()).limit(1)
    for row in db.session.scalars(query.execution_options(yield_per=2000)):
        if as_json:
            click.echo(export_line(row))
        else:
            click.echo(f"seq {row.chain_seq}\t{iso(row.at)}\t{row.hash}\t{row.kid}")


@audit_cli.command("purge")
@click.option("--older-than", "days", type=click.IntRange(1), default=None,
              help="days to keep (default: the audit_retention_days setting)")
@with_appcontext
def purge_cmd(days):
    """Delete records older than the retention period; the rest stays verifiable."""
    days = days or settings().audit_retention_days
    before = int(dt.datetime.now(dt.UTC).timestamp()) - days * 86400
    click.echo(f"{audit.purge(before)} record(s) older than {days} days deleted")
