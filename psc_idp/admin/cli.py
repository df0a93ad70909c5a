"""``psc-idp admin``: access tokens of the admin API; ``psc-idp clients issue-iat``: initial
access tokens for dynamic registration."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..cli_support import iso
from ..clients import ACCESS_TOKEN_FORMATS
from ..clients.cli import clients_cli
from ..extensions import db
from ..oidc.models import now
from . import models


def _lifetime(text: str) -> int:
    try:
        return models.parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group("admin", help="Admin API access tokens.")
def admin_cli():
    pass


@admin_cli.command("issue-token")
@click.option("--label", required=True, help="who or what uses it (e.g. 'ci', 'alice')")
@click.option("--expires", default="30d", show_default=True, help="lifetime: 3600, 12h, 30d")
@with_appcontext
def issue_token(label, expires):
    """Issue an admin access token (printed once)."""
    key, token = models.issue("admin", label, _lifetime(expires))
    click.echo(f"id: {key.id}\ntoken: {token}  (shown once: store it now)")


@admin_cli.command("tokens")
@with_appcontext
def list_tokens():
    """List access keys (admin tokens and initial access tokens), never their values:
    id, scope, label, expiry (UTC) and state (active, expired or revoked)."""
    current = now()
    for key in db.session.scalars(select(models.AccessKey).order_by(models.AccessKey.created_at)):
        expires = iso(key.expires_at)
        state = "revoked" if key.revoked_at else \
            "expired" if key.expires_at < current else "active"
        uses = "" if key.uses_left is None else f"\t{key.uses_left} use(s) left"
        policy = "".join(f"\t{k}={v}" for k, v in (key.policy or {}).items())
        click.echo(f"{key.id}\t{key.scope}\t{key.label}\texpires {expires}\t{state}{uses}"
                   f"{policy}")


@admin_cli.command("revoke-token")
@click.argument("key_id")
@with_appcontext
def revoke_token(key_id):
    """Revoke an admin token or an initial access token."""
    if not models.revoke(key_id):
        raise click.ClickException(f"no active access key {key_id!r}")
    click.echo(f"revoked {key_id}")


@clients_cli.command("issue-iat")
@click.option("--label", default="vendor", show_default=True)
@click.option("--expires", default="7d", show_default=True)
@click.option("--uses", type=click.IntRange(1), default=1, show_default=True,
              help="how many clients it may register")
@click.option("--require-pkce", is_flag=True, help="its clients must use PKCE S256")
@click.option("--strict-client-auth", is_flag=True,
              help="its clients are held to one client authentication method")
@click.option("--access-token-format", type=click.Choice(ACCESS_TOKEN_FORMATS),
              help="rfc9068: its clients get typ at+jwt access tokens")
@click.option("--refresh-reuse-grace", type=click.IntRange(0, 60),
              help="the longest refresh-token reuse grace its clients may have")
@click.option("--dpop", is_flag=True,
              help="its clients must send DPoP proofs (dpop_bound_access_tokens)")
@click.option("--require-par", is_flag=True,
              help="its clients must push their authorization requests (RFC 9126)")
@with_appcontext
def issue_iat(label, expires, uses, require_pkce, strict_client_auth, access_token_format,
              refresh_reuse_grace, dpop, require_par):
    """Issue an initial access token for dynamic registration (RFC 7591), printed once.
    The policy options set a floor: the clients it registers may be stricter, never
    looser."""
    floor = {"require_pkce": require_pkce or None,
             "strict_client_auth": strict_client_auth or None,
             "access_token_format": access_token_format,
             "refresh_reuse_grace": refresh_reuse_grace,
             "dpop_bound_access_tokens": dpop or None,
             "require_pushed_authorization_requests": require_par or None}
    floor = {k: v for k, v in floor.items() if v is not None}
    key, token = models.issue("registration", label, _lifetime(expires), uses=uses,
                              policy=floor)
    click.echo(f"id: {key.id}\ninitial_access_token: {token}  (shown once)")
    if floor:
        click.echo("policy: " + ", ".join(f"{k}={v}" for k, v in floor.items()))
