"""The ``psc-idp`` command: one group, a subcommand per area."""

from __future__ import annotations

import click
from flask.cli import ScriptInfo, with_appcontext

from .admin.cli import admin_cli
from .audit_cli import audit_cli
from .cli_support import OneLineGroup, require_configuration
from .clients.cli import clients_cli
from .directory.cli import directory
from .ecps.cli import ecps_cli
from .housekeeping import housekeeping_cli
from .keys.cli import keys_cli
from .sandbox.cli import sandbox_cli
from .settings import SettingsError, current


def _create_app():
    from .app import create_app
    from .keys.ring import KeyRingError

    require_configuration()
    try:
        return create_app()
    except (SettingsError, KeyRingError) as exc:
        raise click.ClickException(str(exc)) from exc


class PscGroup(OneLineGroup):
    """psc-idp's commands only (no Flask options: listing them must not need a valid
    configuration); the commands that need the app get it through ``with_appcontext``.
    Every error, usage errors included, is one line on stderr with its exit status."""

    def make_context(self, info_name, args, parent=None, **extra):
        extra.setdefault("obj", ScriptInfo(create_app=_create_app, set_debug_flag=False,
                                           load_dotenv_defaults=False))
        return super().make_context(info_name, args, parent=parent, **extra)


main = PscGroup(name="psc-idp",
                help="psc-idp: OpenID Connect provider for health professionals.")


@main.group("db", help="Database schema.")
def db_cli():
    pass


@db_cli.command("upgrade")
@with_appcontext
def upgrade_cmd():
    """Apply the migrations up to the latest schema."""
    from .migrate import upgrade

    upgrade()
    click.echo("database schema is up to date")


@main.command("run")
@with_appcontext
def run_cmd():
    """Start the embedded listeners (IdP, card and operations origins)."""
    from flask import current_app

    from .serve import serve_forever

    settings = current()
    if not settings.tls_cert or not settings.tls_key:
        raise click.ClickException("tls_cert and tls_key must be set for the embedded "
                                   "listeners (psc-idp sandbox init writes them)")
    click.echo(f"psc-idp: issuer {settings.issuer}")
    click.echo(f"psc-idp: card login on {settings.card_login_url}")
    if settings.wallet_listen:
        click.echo(f"psc-idp: authorization endpoint {settings.authorization_endpoint}")
    if settings.mtls_listen:
        click.echo(f"psc-idp: mTLS endpoint aliases (RFC 8705) on {settings.mtls_url}")
    if settings.ops_listen:
        click.echo(f"psc-idp: /healthz, /readyz, /metrics on http://{settings.ops_listen}")
    try:
        serve_forever(current_app._get_current_object())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot start the listeners: {exc}") from exc


for group in (admin_cli, audit_cli, clients_cli, directory, ecps_cli, housekeeping_cli, keys_cli,
              sandbox_cli):
    main.add_command(group)


if __name__ == "__main__":
    main(prog_name="psc-idp")
