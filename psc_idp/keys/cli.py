"""``psc-idp keys``: list, generate and rotate token-signing keys (files or HSM)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .. import settings as settings_module
from .pkcs11 import KeyUnavailable
from .ring import KeyRing, KeyRingError, generate_keys, rotate
from .signer import SUPPORTED_ALGS

backend_option = click.option("--backend", type=click.Choice(["file", "pkcs11"]),
                              default="file", show_default=True,
                              help="pkcs11: generate the key pair in the HSM token")


@click.group("keys", help="Token-signing keys.")
def keys_cli():
    pass


def _settings() -> dict:
    try:
        return settings_module.load()
    except settings_module.SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _when(timestamp) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M")


@keys_cli.command("generate")
@click.option("--alg", "algs", multiple=True, type=click.Choice(SUPPORTED_ALGS),
              help="default: one key for each of RS256, PS256, ES256")
@backend_option
def generate_cmd(algs, backend):
    """Create signing keys that sign at once (first installation; use rotate afterwards)."""
    settings = _settings()
    try:
        created = generate_keys(Path(settings["keys_dir"]), settings, algs or SUPPORTED_ALGS,
                                backend=backend)
    except (KeyUnavailable, KeyRingError) as exc:
        raise click.ClickException(str(exc)) from exc
    for entry in created:
        click.echo(f"{entry['kid']}\t{entry['alg']}\t{backend}")


@keys_cli.command("rotate")
@click.option("--alg", "algs", multiple=True, type=click.Choice(SUPPORTED_ALGS))
@backend_option
@click.option("--publish-delay", type=click.IntRange(0), default=None,
              help="seconds the new key is published before it signs "
                   "(default: key_publish_delay)")
@click.option("--if-older-than", "days", type=click.IntRange(1), default=None,
              help="only rotate keys active for more than DAYS (for a daily cron)")
def rotate_cmd(algs, backend, publish_delay, days):
    """Publish a successor for each signing key; it signs after the publication delay,
    and the old key stays published until every token it signed has expired."""
    settings = _settings()
    delay = settings["key_publish_delay"] if publish_delay is None else publish_delay
    try:
        created = rotate(Path(settings["keys_dir"]), settings, algs or SUPPORTED_ALGS, delay,
                         backend=backend, older_than=days * 86400 if days else None)
    except (KeyUnavailable, KeyRingError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not created:
        click.echo("nothing to rotate")
    for entry in created:
        click.echo(f"{entry['kid']}\t{entry['alg']}\tsigns from {_when(entry['activate_at'])}")


@keys_cli.command("list")
def list_cmd():
    """List the signing keys with their state (next, active, retired, removed)."""
    settings = _settings()
    try:
        ring = KeyRing(Path(settings["keys_dir"]), settings)
    except KeyRingError as exc:
        raise click.ClickException(str(exc)) from exc
    for e in ring.entries():
        click.echo(f"{e['kid']}\t{e['alg']}\t{e.get('backend', 'file')}\t{e['state']}\t"
                   f"from {_when(e.get('activate_at', e['created']))}\t"
                   f"retired {_when(e.get('retire_at'))}")
