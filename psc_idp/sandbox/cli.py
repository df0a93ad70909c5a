"""``psc-idp sandbox``: set up a complete sandbox in one directory (test PKI, SoftHSM test
cards, configuration, signing keys, database, demo directory, demo client), list its
cards, and mint relying parties' organisation certificates for mTLS (``org-cert``)."""

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
@click.option("--mtls-url", default="https://localhost:5447",
              help="origin of the mTLS endpoint aliases (RFC 8705); 'none': no mTLS origin")
def init_cmd(directory: Path, issuer: str, card_login_url: str, mtls_url: str):
    """Create (once) the sandbox in DIRECTORY and write DIRECTORY/psc-idp.toml."""
    from .cards import SandboxError

    config = directory.resolve() / "psc-idp.toml"
    if config.exists():
        click.echo(f"sandbox: {config} exists, keeping the sandbox as it is")
        _add_console_admin(config)
        return
    try:
        init_sandbox(directory.resolve(), issuer=issuer, card_login_url=card_login_url,
                     mtls_url="" if mtls_url == "none" else mtls_url, echo=click.echo)
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


def init_sandbox(directory: Path, *, issuer: str, card_login_url: str, mtls_url: str = "",
                 echo=print) -> Path:
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
        **_mtls_settings(pki, mtls_url),
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


def _mtls_settings(pki, mtls_url: str) -> dict:
    """The mTLS origin (RFC 8705) on the embedded listener of ``mtls_url``'s port, and the
    sandbox's organisations CA as the trust anchor of ``tls_client_auth``."""
    settings = {"org_trust_anchors": [str(pki.trust_anchor)],
                "org_intermediates": [str(pki.org_ca)], "org_crls": [str(pki.org_crl)]}
    if mtls_url:
        port = urlsplit(mtls_url).port or 443
        settings |= {"mtls_url": mtls_url, "mtls_listen": f"127.0.0.1:{port}"}
    return settings


@sandbox_cli.command("org-cert")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--client-id", required=True, help="the relying party the certificate is for")
@click.option("--finess", help="FINESS number of the organisation (OU: structure "
                               "identifier 1<FINESS>)")
@click.option("--structure-id", help="OU as given (instead of --finess)")
@click.option("--organisation", default="TEST ORGANISATION", help="O of the subject")
@click.option("--label", help="SoftHSM token label (default: ORG-<client id>)")
@click.option("--self-signed", is_flag=True,
              help="a self-signed certificate (self_signed_tls_client_auth) instead")
@click.option("--json", "as_json", is_flag=True)
def org_cert_cmd(directory: Path, client_id, finess, structure_id, organisation, label,
                 self_signed, as_json):
    """Mint an organisation certificate (IGC-Santé ORG AUTH_CLI-like, key generated in a
    SoftHSM token) for a relying party's mTLS client authentication (RFC 8705)."""
    from . import orgs
    from .cards import USER_PIN, SandboxError, SoftHsm
    from .pki import TestPki

    hsm, pki = SoftHsm(directory / "softhsm"), TestPki(directory / "pki")
    if not hsm.index.exists():
        raise click.ClickException(f"no sandbox in {directory} (run: psc-idp sandbox init)")
    label = label or f"ORG-{client_id}"[:32]  # PKCS#11 token labels: 32 characters
    try:
        if self_signed:
            org = orgs.self_signed(hsm, label=label, client_id=client_id)
        else:
            ou = structure_id or orgs.FINESS_PREFIX + (finess or "750000001")
            org = orgs.mint(hsm, pki, label=label, client_id=client_id,
                            organisation=organisation, structure_id=ou)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({**org.__dict__, "pkcs11_uri": org.pkcs11_uri, "pin": USER_PIN,
                               "openssl_conf": str(hsm.openssl_conf),
                               "softhsm2_conf": str(hsm.conf)}))
        return
    click.echo(f"token:       {org.label} (PIN {USER_PIN})")
    click.echo(f"pkcs11 uri:  {org.pkcs11_uri}")
    click.echo(f"certificate: {org.certificate}")
    click.echo(f"subject DN:  {org.subject_dn}")
    if self_signed:
        jwks = Path(org.certificate).with_suffix(".jwks.json")
        jwks.write_text(json.dumps(org.jwks(), indent=1))
        click.echo(f"register:    psc-idp clients update {client_id} --auth-method "
                   f"self_signed_tls_client_auth --jwks {jwks}")
    else:
        click.echo(f"register:    psc-idp clients update {client_id} --auth-method "
                   f"tls_client_auth --tls-subject-dn '{org.subject_dn}'")
    click.echo(f"curl:        OPENSSL_CONF={hsm.openssl_conf} SOFTHSM2_CONF={hsm.conf} curl "
               f"--engine pkcs11 --key-type ENG --key '{org.pkcs11_uri};pin-value={USER_PIN}' "
               f"--cert {org.certificate} …")


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
