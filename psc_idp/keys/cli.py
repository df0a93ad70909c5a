"""``psc-idp keys``: list, generate, rotate and check the token-signing keys (files or
HSM). These commands need the settings only, not the database."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import settings as settings_module
from ..cli_support import iso as _when
from ..cli_support import require_configuration
from . import lifecycle
from .index import KeyRingError
from .ring import KeyRing
from .signer import SUPPORTED_ALGS, KeyUnavailable

alg_option = click.option("--alg", "algs", multiple=True, type=click.Choice(SUPPORTED_ALGS),
                          help="repeatable")
backend_option = click.option("--backend", type=click.Choice(lifecycle.BACKENDS),
                              default=None, help="default: the keys_backend setting")


@click.group("keys", help="Token-signing keys.")
def keys_cli():
    pass


def _settings() -> dict:
    require_configuration()
    try:
        return settings_module.load()
    except settings_module.SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(change):
    try:
        return change()
    except (KeyUnavailable, KeyRingError) as exc:
        raise click.ClickException(str(exc)) from exc


@keys_cli.command("generate")
@alg_option
@backend_option
def generate_cmd(algs, backend):
    """Create the first keys (default: one each for RS256, PS256, ES256); they sign at
    once. Replacing a key is 'keys rotate'."""
    settings = _settings()
    created = _run(lambda: lifecycle.generate_keys(
        Path(settings.keys_dir), settings, algs or SUPPORTED_ALGS, backend=backend))
    for entry in created:
        click.echo(f"{entry['kid']}\t{entry['alg']}\t{entry['backend']}\t"
                   f"signs from {_when(entry['activate_at'])}")


@keys_cli.command("rotate")
@alg_option
@backend_option
@click.option("--publish-delay", type=click.IntRange(0), default=None,
              help="seconds the new key is published before it signs "
                   "(default: key_publish_delay)")
@click.option("--if-older-than", "days", type=click.FloatRange(0), default=None,
              help="only replace keys that have signed for more than DAYS (for cron)")
def rotate_cmd(algs, backend, publish_delay, days):
    """Publish a successor for each signing key; it signs after the publication delay and
    the old key stays published until every token it signed has expired. Also destroys
    the keys that left the JWKS."""
    settings = _settings()
    keys_dir = Path(settings.keys_dir)
    destroyed = _run(lambda: lifecycle.purge(keys_dir, settings))
    created = _run(lambda: lifecycle.rotate(
        keys_dir, settings, algs or None, publish_delay=publish_delay, backend=backend,
        older_than=days * 86400 if days is not None else None))
    for kid in destroyed:
        click.echo(f"{kid}\tdestroyed (no longer published)")
    for entry in created:
        click.echo(f"{entry['kid']}\t{entry['alg']}\t{entry['backend']}\t"
                   f"signs from {_when(entry['activate_at'])}")
    if not created:
        click.echo("nothing to rotate")


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json):
    """The keys and their state: next (published, not signing yet), active, retired
    (published, no longer signing), removed (out of the JWKS, destroyed by 'keys rotate')."""
    settings = _settings()
    entries = _ring(settings).entries()
    if as_json:
        click.echo(json.dumps(entries, indent=1))
        return
    for e in entries:
        click.echo(f"{e['kid']}\t{e['alg']}\t{e.get('backend', 'file')}\t{e['state']}\t"
                   f"signs from {_when(e['activate_at'])} until {_when(e.get('retire_at'))}\t"
                   f"published until {_when(e.get('remove_at'))}")


@keys_cli.command("check")
def check_cmd():
    """Sign with each key that signs or is about to and verify against its published key;
    exit code 1 if any cannot (HSM unreachable, wrong PIN, missing key...)."""
    health = _ring(_settings()).health()
    for kid, problem in health["problems"].items():
        click.echo(f"{kid}\t{problem}", err=True)
    if not health["ok"]:
        raise SystemExit(1)
    click.echo(f"ok: {', '.join(health['algorithms'])}")


def _ring(settings: settings_module.Settings) -> KeyRing:
    return _run(lambda: KeyRing(Path(settings.keys_dir), settings))
