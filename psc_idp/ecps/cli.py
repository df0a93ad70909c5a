"""``psc-idp ecps``: the development outboxes, and the devices of a professional."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext

from ..settings import current
from .messaging import OutboxGateway


@click.group("ecps", help="e-CPS: development outboxes, enrolled devices, the phones' channel.")
def ecps_cli():
    pass


@ecps_cli.command("outbox")
@click.option("--last", default=10, show_default=True, help="how many messages of each kind")
@with_appcontext
def outbox_cmd(last: int):
    """Show the SMS and e-mails of the development outboxes (activation codes)."""
    settings = current()
    for kind, directory in (("SMS", settings.sms_outbox_dir),
                            ("e-mail", settings.mail_outbox_dir)):
        for message in OutboxGateway(directory).messages()[-last:]:
            when = dt.datetime.fromtimestamp(message["at"], dt.UTC).strftime("%H:%M:%S")
            text = message["text"]
            if kind == "e-mail":
                text = text.split("\n\n", 1)[-1].strip()
            click.echo(f"[{kind} {when} to {message['to']}]\n{text}\n")


@ecps_cli.command("devices")
@click.argument("id_nat")
@with_appcontext
def devices_cmd(id_nat: str):
    """List the e-CPS devices of ID_NAT."""
    from .service import devices_of

    for device in devices_of(id_nat):
        click.echo(f"{device.id}\t{device.status}\t{device.label}\t{device.activated_by}")


@ecps_cli.command("revoke")
@click.argument("id_nat")
@click.argument("device_id")
@with_appcontext
def revoke_cmd(id_nat: str, device_id: str):
    """Revoke DEVICE_ID of ID_NAT (takes effect at once)."""
    from .service import revoke_device

    if not revoke_device(device_id, id_nat, actor="cli"):
        raise click.ClickException(f"no active device {device_id} for {id_nat}")
    click.echo(f"device {device_id} revoked")


@ecps_cli.command("channel")
@with_appcontext
def channel_cmd():
    """Serve the phones' long poll on ecps_channel_listen, behind nginx (no thread per
    waiting phone; psc-idp run needs none: it serves the long poll itself)."""
    from flask import current_app
    from twisted.internet.error import CannotListenError

    from .channel_server import serve_forever

    click.echo(f"psc-idp: e-CPS channel on {current().ecps_channel_listen}")
    try:
        serve_forever(current_app._get_current_object())
    except (OSError, CannotListenError) as exc:
        raise click.ClickException(f"cannot start the e-CPS channel: {exc}") from exc
