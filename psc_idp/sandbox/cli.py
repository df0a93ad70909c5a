"""``psc-idp sandbox``: set up a complete sandbox in one directory (test PKI, SoftHSM test
cards, configuration, signing keys, database, demo directory, demo client) and list its
cards."""

from __future__ import annotations

import json
import secrets
import tomllib
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import click

DEMO_CLIENT_ID = "psc-idp-demo"
DEMO_REDIRECT_URI = "http://localhost:8000/callback"
DEMO_LOGOUT_URI = "http://localhost:8000/"
DEMO_BACKCHANNEL_URI = "http://localhost:8000/backchannel-logout"


@click.group("sandbox", help="Sandbox: test PKI, SoftHSM test cards, demo data.")
def sandbox_cli():
    pass


@sandbox_cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--issuer", default="https://localhost:5443/auth/realms/esante-wallet")
@click.option("--card-login-url", default="https://localhost:5444")
def init_cmd(directory: Path, issuer: str, card_login_url: str):
    """Create (once) the sandbox in DIRECTORY and write DIRECTORY/psc-idp.toml."""
    from .cards import SandboxError

    config = directory.resolve() / "psc-idp.toml"
    if config.exists():
        click.echo(f"sandbox: {config} exists, keeping the sandbox as it is")
        _add_console_admin(config)
        return
    try:
        init_sandbox(directory.resolve(), issuer=issuer, card_login_url=card_login_url,
                     echo=click.echo)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc


@sandbox_cli.command("cards")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def cards_cmd(directory: Path, as_json: bool):
    """List the test cards of the sandbox in DIRECTORY."""
    from .cards import SoftHsm
    from .demo import DEMO_CARDS, REFUSED_CARDS

    hsm = SoftHsm(directory / "softhsm")
    if not hsm.index.exists():
        raise click.ClickException(f"no sandbox in {directory} (run: psc-idp sandbox init)")
    notes = {spec.label: spec.note for spec in DEMO_CARDS + REFUSED_CARDS}  # current text
    cards = [replace(card, note=notes.get(card.label, card.note)) for card in hsm.cards()]
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in cards], ensure_ascii=False))
        return
    for card in cards:
        click.echo(f"{card.label:<18} {card.id_nat}  {card.given_name} {card.family_name}"
                   f" ({card.title}) — {card.note}")


def init_sandbox(directory: Path, *, issuer: str, card_login_url: str, echo=print) -> Path:
    from ..app import create_app
    from ..clients import create_client
    from ..directory.importer import import_files
    from ..keys.ring import generate_keys
    from ..migrate import upgrade
    from .cards import USER_PIN, SoftHsm
    from .demo import CONSOLE_ADMIN, DEMO_CARDS, REFUSED_CARDS, provision
    from .pki import build_pki

    directory.mkdir(parents=True, exist_ok=True)
    pki = build_pki(directory / "pki")
    echo(f"sandbox: test PKI in {pki.directory}")
    hsm = SoftHsm(directory / "softhsm").create()
    for spec in DEMO_CARDS + REFUSED_CARDS:
        provision(hsm, pki, spec)
        echo(f"sandbox: card {spec.label} ({spec.given_name} {spec.family_name}), PIN "
             f"{USER_PIN}")
    passphrase = secrets.token_urlsafe(24)
    generate_keys(directory / "keys", passphrase)
    settings = {
        "mode": "development", "issuer": issuer, "card_login_url": card_login_url,
        "database_url": f"sqlite:///{directory / 'psc-idp.sqlite3'}",
        "secret_key": secrets.token_urlsafe(48),
        "keys_dir": str(directory / "keys"), "keys_passphrase": passphrase,
        "card_trust_anchors": [str(pki.trust_anchor)],
        "card_intermediates": [str(pki.issuing_ca)],
        "card_crls": [str(pki.crl)],
        "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key),
        "sms_outbox_dir": str(directory / "sms-outbox"),
        "smtp_host": "", "mail_outbox_dir": str(directory / "mail-outbox"),
        "admins": [CONSOLE_ADMIN],
    }
    # only these settings: the file PSC_IDP_CONFIG may name is the one being written here
    app = create_app(settings, environ={})
    with app.app_context():
        upgrade()
        report = import_files([Path(__file__).with_name("demo_directory.txt")])
        echo(f"sandbox: demo directory loaded ({report.summary()})")
        client, secret = create_client(
            name="psc-idp demo", client_id=DEMO_CLIENT_ID, redirect_uris=[DEMO_REDIRECT_URI],
            post_logout_redirect_uris=[DEMO_LOGOUT_URI],
            backchannel_logout_uri=DEMO_BACKCHANNEL_URI)
        (directory / "demo-client.json").write_text(json.dumps({
            "client_id": client.client_id, "client_secret": secret,
            "redirect_uri": DEMO_REDIRECT_URI, "issuer": issuer,
        }, indent=1))
        (directory / "demo-client.json").chmod(0o600)
    config = directory / "psc-idp.toml"
    config.write_text(_toml(settings))
    config.chmod(0o600)
    echo(f"sandbox: configuration written to {config}")
    echo(f"sandbox: demo client {DEMO_CLIENT_ID}, secret in {directory / 'demo-client.json'}")
    admin = next(spec for spec in DEMO_CARDS if spec.id_nat == CONSOLE_ADMIN)
    echo(f"sandbox: ops console {console_url(issuer)} with card {admin.label} "
         f"({admin.given_name} {admin.family_name}), PIN {USER_PIN}")
    return config


def _add_console_admin(config: Path) -> None:
    """A sandbox made before its console had an administrator gets KIT as one."""
    from .demo import CONSOLE_ADMIN

    text = config.read_text(encoding="utf-8")
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise click.ClickException(f"{config} is not valid TOML: {exc}") from exc
    if "admins" in settings:
        return
    if any(line.lstrip().startswith("[") for line in text.splitlines()):
        click.echo(f"sandbox: add admins = [\"{CONSOLE_ADMIN}\"] to {config} for the console")
        return
    config.write_text(text.rstrip("\n") + f'\nadmins = ["{CONSOLE_ADMIN}"]\n', encoding="utf-8")
    click.echo(f"sandbox: {CONSOLE_ADMIN} (KIT) is now the console administrator ({config})")


def console_url(issuer: str) -> str:
    """The ops console, on the issuer's origin."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}/admin/console/"


def _toml(settings: dict) -> str:
    lines = ["# psc-idp sandbox configuration, written by `psc-idp sandbox init`."]
    for key, value in settings.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"
