"""``psc-idp keys``: list and generate token-signing keys."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import settings as settings_module
from .ring import INDEX, generate_keys
from .signer import SUPPORTED_ALGS


@click.group("keys", help="Token-signing keys.")
def keys_cli():
    pass


def _keys_settings() -> tuple[Path, str]:
    try:
        values = settings_module.load()
    except settings_module.SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    return Path(values["keys_dir"]), values["keys_passphrase"]


@keys_cli.command("generate")
@click.option("--alg", "algs", multiple=True, type=click.Choice(SUPPORTED_ALGS),
              help="default: one key for each of RS256, PS256, ES256")
def generate_cmd(algs):
    """Create new signing keys (they sign from the next start)."""
    keys_dir, passphrase = _keys_settings()
    for entry in generate_keys(keys_dir, passphrase, algs or SUPPORTED_ALGS):
        click.echo(f"{entry['kid']}\t{entry['alg']}")


@keys_cli.command("list")
def list_cmd():
    """List the signing keys."""
    keys_dir, _ = _keys_settings()
    index = keys_dir / INDEX
    for entry in json.loads(index.read_text()) if index.exists() else []:
        click.echo(f"{entry['kid']}\t{entry['alg']}\t{entry['file']}")
