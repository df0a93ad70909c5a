"""``psc-idp clients``: the whole life of a relying party from the command line."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ..cli_support import iso
from ..keys.signer import SUPPORTED_ALGS
from ..oidc.consts import CLIENT_AUTH_METHODS
from ..oidc.models import Client
from ..settings import current as settings
from . import (
    ACCESS_TOKEN_FORMATS,
    MAX_SECRET_GRACE,
    TLS_SUBJECT_FIELDS,
    RegistrationError,
    create_client,
    delete_client,
    describe,
    find,
    rotate_secret,
    set_enabled,
    update_client,
)


@click.group("clients", help="Register and manage relying parties.")
def clients_cli():
    pass


def _jwks(jwks_file):
    try:
        return json.load(jwks_file) if jwks_file else None
    except ValueError as exc:
        raise click.ClickException(f"--jwks: not JSON ({exc})") from exc


def _get(client_id: str) -> Client:
    client = find(client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    return client


def _print(client: Client, secret: str | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**describe(client), "client_secret": secret}))
        return
    click.echo(f"client_id: {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}  (shown once: store it now)")


def _drop_in_options(command):
    """The per-client settings between PSC's behaviour (default) and the strict one."""
    options = [
        click.option("--pkce/--no-pkce", "pkce", default=None,
                     help="require PKCE S256 (default: pkce_required_for_confidential; "
                          "always for public clients)"),
        click.option("--strict-client-auth/--lenient-client-auth", "strict_auth", default=None,
                     help="refuse credentials sent twice or with another method than "
                          "--auth-method (default: lenient, as PSC)"),
        click.option("--access-token-format", type=click.Choice(ACCESS_TOKEN_FORMATS),
                     help="psc (typ JWT, PSC's claims; default) or rfc9068 (typ at+jwt)"),
        click.option("--refresh-reuse-grace", "grace", type=click.IntRange(0, 60),
                     help="seconds a rotated refresh token may be reused (default: the "
                          "server's refresh_reuse_grace)"),
        click.option("--dpop/--no-dpop", "dpop", default=None,
                     help="dpop_bound_access_tokens: every token request must carry a DPoP "
                          "proof (RFC 9449; default: DPoP when the client sends a proof)"),
        click.option("--require-par/--no-require-par", "require_par", default=None,
                     help="authorization requests only through the PAR endpoint (RFC "
                          "9126; default: no, as PSC, unless the server's "
                          "require_pushed_authorization_requests)"),
        click.option("--request-object-alg", type=click.Choice([*SUPPORTED_ALGS, "any"]),
                     help="the one alg of its request objects (RFC 9101; default: any "
                          "supported)"),
        click.option("--fapi2/--no-fapi2", "fapi2", default=None,
                     help="the FAPI 2.0 Security Profile: PAR, PKCE S256, DPoP-bound tokens, "
                          "private_key_jwt (or mTLS), codes of at most 60 s (default: no)"),
        click.option("--strict-request-objects/--lenient-request-objects", "strict_ro",
                     default=None, help="only the request object's parameters count "
                                        "(RFC 9101 section 5; default: they take "
                                        "precedence over the query's, as PSC)"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _backchannel_options(command):
    """OIDC Back-Channel Logout 1.0 §2.2 metadata."""
    command = click.option(
        "--backchannel-session-required/--no-backchannel-session-required", "bc_session",
        default=None, help="backchannel_logout_session_required (logout tokens always "
                           "carry sid)")(command)
    return click.option("--backchannel-logout-uri", "bc_uri",
                        help="where logout tokens are POSTed when a session ends (https; "
                             "'none' removes it)")(command)


def _backchannel(bc_uri, bc_session, ciba=None, ciba_endpoint=None) -> dict:
    values = {"backchannel_logout_session_required": bc_session}
    if bc_uri is not None:
        values["backchannel_logout_uri"] = None if bc_uri in ("", "none") else bc_uri
    if ciba is not None:
        values["backchannel_token_delivery_mode"] = None if ciba == "off" else ciba
    if ciba_endpoint is not None:
        values["backchannel_client_notification_endpoint"] = \
            None if ciba_endpoint in ("", "none") else ciba_endpoint
    nullable = ("backchannel_logout_uri", "backchannel_token_delivery_mode",
                "backchannel_client_notification_endpoint")
    return {k: v for k, v in values.items() if k in nullable or v is not None}


def _ciba_options(command):
    """OpenID CIBA Core 1.0 §4 metadata."""
    command = click.option(
        "--ciba-notification-endpoint", "ciba_endpoint",
        help="ping mode: where psc-idp POSTs the notification (https; 'none' removes "
             "it)")(command)
    return click.option("--ciba", type=click.Choice(["poll", "ping", "off"]),
                        help="allow CIBA (decoupled login) with this token delivery "
                             "mode")(command)


def _mtls_options(command):
    """RFC 8705 metadata: the certificate of tls_client_auth, certificate-bound tokens; the
    RFC 8693 audiences ops allow (the EDC's token exchange, over mTLS)."""
    command = click.option(
        "--exchange-audience", "exchange_audiences", multiple=True, metavar="API",
        help="RFC 8693 token exchange: an API (audience or resource) this client may get "
             "tokens for, repeatable, replaces the list ('none' empties it)")(command)
    command = click.option(
        "--mtls-bound/--no-mtls-bound", "mtls_bound", default=None,
        help="tls_client_certificate_bound_access_tokens: tokens bound to the client's TLS "
             "certificate, token requests on the mTLS endpoint aliases (RFC 8705)")(command)
    command = click.option(
        "--tls-san", "tls_san", metavar="KIND:VALUE",
        help="tls_client_auth: match this subjectAltName entry instead of the DN "
             "(dns:…, uri:…, ip:…, email:…)")(command)
    return click.option(
        "--tls-subject-dn", "tls_dn", metavar="DN",
        help="tls_client_auth: the certificate's subject DN, RFC 4514, e.g. "
             "'CN=app,OU=1750000001,O=Clinique,C=FR' (psc-idp sandbox org-cert prints "
             "it)")(command)


def _mtls(tls_dn, tls_san, mtls_bound, exchange_audiences=()) -> dict:
    values = {}
    if exchange_audiences:
        values["token_exchange_audiences"] = [a for a in exchange_audiences if a != "none"]
    if tls_dn is not None or tls_san is not None:  # one subject field: the others cleared
        values = dict.fromkeys(TLS_SUBJECT_FIELDS)
    if tls_dn is not None and tls_dn not in ("", "none"):
        values["tls_client_auth_subject_dn"] = tls_dn
    if tls_san is not None and tls_san not in ("", "none"):
        kind, _, value = tls_san.partition(":")
        if kind not in ("dns", "uri", "ip", "email") or not value:
            raise click.BadParameter("KIND:VALUE with KIND dns, uri, ip or email",
                                     param_hint="--tls-san")
        values[f"tls_client_auth_san_{kind}"] = value
    if mtls_bound is not None:
        values["tls_client_certificate_bound_access_tokens"] = mtls_bound
    return values


def _drop_in(pkce, strict_auth, access_token_format, grace, dpop=None, require_par=None,
             request_object_alg=None, strict_ro=None, fapi2=None) -> dict:
    values = {"require_pkce": pkce, "strict_client_auth": strict_auth,
              "access_token_format": access_token_format, "refresh_reuse_grace": grace,
              "dpop_bound_access_tokens": dpop,
              "require_pushed_authorization_requests": require_par,
              "strict_request_objects": strict_ro, "fapi2_security_profile": fapi2}
    values = {k: v for k, v in values.items() if v is not None}
    if request_object_alg:  # "any": none registered
        values["request_object_signing_alg"] = None if request_object_alg == "any" \
            else request_object_alg
    return values


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
@_drop_in_options
@_mtls_options
@_backchannel_options
@_ciba_options
@click.option("--compat", multiple=True, help="PSC compatibility flag (repeatable)")
@click.option("--contact", "contacts", multiple=True, help="e-mail of the client's team")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def create_cmd(name, redirect_uris, logout_uris, auth_method, client_id, jwks_file,
               id_token_alg, userinfo_alg, pkce, strict_auth, access_token_format, grace,
               dpop, require_par, request_object_alg, strict_ro, fapi2, tls_dn, tls_san,
               mtls_bound, exchange_audiences, bc_uri, bc_session, ciba, ciba_endpoint, compat,
               contacts, as_json):
    """Register a client; prints its id and, once, its secret."""
    try:
        client, secret = create_client(
            name=name, redirect_uris=list(redirect_uris), post_logout_redirect_uris=logout_uris,
            auth_method=auth_method, client_id=client_id, jwks=_jwks(jwks_file),
            id_token_alg=id_token_alg, userinfo_alg=userinfo_alg, compat=compat,
            contacts=contacts,
            **_drop_in(pkce, strict_auth, access_token_format, grace, dpop, require_par,
                       request_object_alg, strict_ro, fapi2),
            **_mtls(tls_dn, tls_san, mtls_bound, exchange_audiences),
            **_backchannel(bc_uri, bc_session, ciba, ciba_endpoint))
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(client, secret, as_json)


@clients_cli.command("update")
@click.argument("client_id")
@click.option("--name")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="replaces the list")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True,
              help="replaces the list")
@click.option("--auth-method", type=click.Choice(CLIENT_AUTH_METHODS))
@click.option("--jwks", "jwks_file", type=click.File("r"))
@click.option("--id-token-alg", type=click.Choice(SUPPORTED_ALGS))
@click.option("--userinfo-alg", type=click.Choice([*SUPPORTED_ALGS, "none"]))
@click.option("--scope", help="e.g. 'openid scope_all'")
@click.option("--refresh/--no-refresh", "refresh", default=None,
              help="allow the refresh_token grant")
@_drop_in_options
@_mtls_options
@_backchannel_options
@_ciba_options
@click.option("--compat", multiple=True, help="replaces the compatibility flags")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def update_cmd(client_id, name, redirect_uris, logout_uris, auth_method, jwks_file,
               id_token_alg, userinfo_alg, scope, refresh, pkce, strict_auth,
               access_token_format, grace, dpop, require_par, request_object_alg, strict_ro, fapi2,
               tls_dn, tls_san, mtls_bound, exchange_audiences, bc_uri, bc_session, ciba,
               ciba_endpoint, compat, as_json):
    """Change a client's metadata (only the options given)."""
    client = _get(client_id)
    changes = {"client_name": name, "token_endpoint_auth_method": auth_method,
               "id_token_signed_response_alg": id_token_alg, "scope": scope}
    changes = {k: v for k, v in changes.items() if v is not None}
    changes.update(_drop_in(pkce, strict_auth, access_token_format, grace, dpop, require_par,
                            request_object_alg, strict_ro, fapi2))
    changes.update(_mtls(tls_dn, tls_san, mtls_bound, exchange_audiences))
    changes.update(_backchannel(bc_uri, bc_session, ciba, ciba_endpoint))
    if redirect_uris:
        changes["redirect_uris"] = list(redirect_uris)
    if logout_uris:
        changes["post_logout_redirect_uris"] = list(logout_uris)
    if jwks_file:
        changes["jwks"] = _jwks(jwks_file)
    if userinfo_alg:
        changes["userinfo_signed_response_alg"] = None if userinfo_alg == "none" else userinfo_alg
    if refresh is not None:
        changes["grant_types"] = ["authorization_code"] + (["refresh_token"] if refresh else [])
    if compat:
        changes["compat"] = list(compat)
    if not changes:
        raise click.ClickException("nothing to change: give at least one option")
    try:
        secret = update_client(client, changes, actor="cli")
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(client, secret, as_json)


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option("--grace", type=click.IntRange(0, MAX_SECRET_GRACE), default=None,
              help="seconds the old secret keeps working (default: client_secret_grace)")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def rotate_cmd(client_id, grace, as_json):
    """Issue a new secret; the old one works for the grace period, until the date (UTC)
    printed."""
    client = _get(client_id)
    grace = settings().client_secret_grace \
        if grace is None else grace
    try:
        secret = rotate_secret(client, grace, actor="cli")
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    until = client.previous_secret_expires_at
    if as_json:
        click.echo(json.dumps({**describe(client), "client_secret": secret,
                               "old_secret_accepted_until": iso(until) if until else None}))
        return
    _print(client, secret, False)
    click.echo(f"old secret accepted until {iso(until)}" if until else
               "old secret no longer accepted (no grace period)")


@clients_cli.command("disable")
@click.argument("client_id")
@with_appcontext
def disable_cmd(client_id):
    """Refuse every request of the client until it is enabled again."""
    set_enabled(_get(client_id), False, actor="cli")
    click.echo(f"disabled {client_id}")


@clients_cli.command("enable")
@click.argument("client_id")
@with_appcontext
def enable_cmd(client_id):
    """Accept the client's requests again."""
    set_enabled(_get(client_id), True, actor="cli")
    click.echo(f"enabled {client_id}")


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
        state = "" if c.enabled else "\tdisabled"
        click.echo(f"{c.client_id}\t{c.name}\t{c.token_endpoint_auth_method}{state}")


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
    delete_client(_get(client_id), actor="cli")
    click.echo(f"deleted {client_id}")
