"""Registering relying parties: validation of their metadata and the ``psc-idp clients``
commands. Secrets are shown once and stored hashed."""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import urlsplit

import click
from flask.cli import with_appcontext

from . import audit
from .extensions import db
from .keys.signer import SUPPORTED_ALGS
from .oidc.consts import CLIENT_AUTH_METHODS, GRANT_TYPES
from .oidc.models import Client, digest

CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{3,64}$")
LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}


class RegistrationError(ValueError):
    """Invalid client metadata; the message says which field and why."""


def check_uri(uri: str, field: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise RegistrationError(f"{field}: {uri!r} is not an absolute http(s) URL")
    if parts.fragment:
        raise RegistrationError(f"{field}: {uri!r} must not have a fragment")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise RegistrationError(f"{field}: {uri!r} must use https (http only for loopback)")
    return uri


def create_client(*, name: str, redirect_uris: list[str], post_logout_redirect_uris=(),
                  auth_method="client_secret_basic", client_id=None, jwks=None,
                  id_token_alg="RS256", userinfo_alg=None, require_pkce=True,
                  compat=()) -> tuple[Client, str | None]:
    """Validate and store a client; returns it with its secret (None if it has none)."""
    _validate(name, redirect_uris, auth_method, client_id, jwks, id_token_alg, userinfo_alg)
    client_id = client_id or _new_client_id(name)
    if db.session.get(Client, client_id) is not None:
        raise RegistrationError(f"client_id {client_id!r} is already registered")
    secret = secrets.token_urlsafe(32) if auth_method.startswith("client_secret") else None
    client = Client(
        client_id=client_id, name=name, secret_hash=digest(secret) if secret else None,
        redirect_uris=[check_uri(u, "redirect_uri") for u in redirect_uris],
        post_logout_redirect_uris=[check_uri(u, "post_logout_redirect_uri")
                                   for u in post_logout_redirect_uris],
        token_endpoint_auth_method=auth_method, jwks=jwks, scope="openid scope_all",
        grant_types=list(GRANT_TYPES), id_token_signed_response_alg=id_token_alg,
        userinfo_signed_response_alg=userinfo_alg,
        require_pkce=True if auth_method == "none" else require_pkce, compat=list(compat),
    )
    db.session.add(client)
    audit.record("client.created", client_id=client_id, actor="cli")
    db.session.commit()
    return client, secret


def _validate(name, redirect_uris, auth_method, client_id, jwks, id_token_alg, userinfo_alg):
    if not name or len(name) > 200:
        raise RegistrationError("name: required, at most 200 characters")
    if not redirect_uris:
        raise RegistrationError("redirect_uri: at least one is required")
    if auth_method not in CLIENT_AUTH_METHODS:
        raise RegistrationError(f"auth_method: one of {', '.join(CLIENT_AUTH_METHODS)}")
    if client_id is not None and not CLIENT_ID.match(client_id):
        raise RegistrationError("client_id: 3 to 64 characters among A-Z a-z 0-9 . _ -")
    if auth_method == "private_key_jwt" and not (jwks and jwks.get("keys")):
        raise RegistrationError("private_key_jwt needs the client's public keys (--jwks FILE)")
    for field, alg in (("id_token_alg", id_token_alg), ("userinfo_alg", userinfo_alg)):
        if alg is not None and alg not in SUPPORTED_ALGS:
            raise RegistrationError(f"{field}: one of {', '.join(SUPPORTED_ALGS)}")


def _new_client_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "client"
    return f"{slug}-{secrets.token_hex(4)}"


def describe(client: Client) -> dict:
    return {
        "client_id": client.client_id, "name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
        "require_pkce": client.require_pkce, "enabled": client.enabled,
        "compat": client.compat,
    }


@click.group("clients", help="Register and inspect relying parties.")
def clients_cli():
    pass


@clients_cli.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True)
@click.option("--auth-method", default="client_secret_basic",
              type=click.Choice(CLIENT_AUTH_METHODS))
@click.option("--client-id", default=None, help="default: derived from the name")
@click.option("--jwks", "jwks_file", type=click.File("r"), help="public JWKS (private_key_jwt)")
@click.option("--id-token-alg", default="RS256", type=click.Choice(SUPPORTED_ALGS))
@click.option("--userinfo-alg", default=None, type=click.Choice(SUPPORTED_ALGS))
@click.option("--no-pkce", is_flag=True, help="do not require PKCE (confidential clients)")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def create_cmd(name, redirect_uris, logout_uris, auth_method, client_id, jwks_file,
               id_token_alg, userinfo_alg, no_pkce, as_json):
    """Register a client; prints its id and, once, its secret."""
    try:
        jwks = json.load(jwks_file) if jwks_file else None
    except ValueError as exc:
        raise click.ClickException(f"--jwks: not JSON ({exc})") from exc
    try:
        client, secret = create_client(
            name=name, redirect_uris=list(redirect_uris), post_logout_redirect_uris=logout_uris,
            auth_method=auth_method, client_id=client_id, jwks=jwks, id_token_alg=id_token_alg,
            userinfo_alg=userinfo_alg, require_pkce=not no_pkce)
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({**describe(client), "client_secret": secret}))
        return
    click.echo(f"client_id: {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}  (shown once: store it now)")


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_cmd(as_json):
    """List registered clients."""
    clients = Client.query.order_by(Client.client_id).all()
    if as_json:
        click.echo(json.dumps([describe(c) for c in clients]))
        return
    for c in clients:
        click.echo(f"{c.client_id}\t{c.name}\t{c.token_endpoint_auth_method}")


@clients_cli.command("show")
@click.argument("client_id")
@with_appcontext
def show_cmd(client_id):
    """Show one client as JSON."""
    click.echo(json.dumps(describe(_get(client_id)), indent=2))


@clients_cli.command("delete")
@click.argument("client_id")
@with_appcontext
def delete_cmd(client_id):
    """Delete a client."""
    db.session.delete(_get(client_id))
    audit.record("client.deleted", client_id=client_id, actor="cli")
    db.session.commit()
    click.echo(f"deleted {client_id}")


def _get(client_id: str) -> Client:
    client = db.session.get(Client, client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    return client
