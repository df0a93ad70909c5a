"""Dynamic client registration (RFC 7591) gated by initial access tokens that ops issue to a
vendor (``psc-idp clients issue-iat``), and client configuration management (RFC 7592) with
the registration access token returned at registration."""

from __future__ import annotations

import secrets

from flask import Blueprint, current_app, jsonify, request

from .. import clients
from ..clients import RegistrationError
from ..extensions import db
from ..oidc.models import digest
from . import models
from .auth import bearer, unauthorized

bp = Blueprint("registration", __name__)
PATH = "/clients-registrations/openid-connect"
#: informational RFC 7591 fields psc-idp accepts and does not keep
IGNORED = {"logo_uri", "client_uri", "policy_uri", "tos_uri", "software_id",
           "software_version"}
KEPT_ON_REPLACE = {"token_endpoint_auth_method", "require_pkce", "compat", "strict_client_auth",
                   "access_token_format", "refresh_reuse_grace"}
READ_ONLY = {"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
             "registration_access_token", "registration_client_uri"}


@bp.errorhandler(RegistrationError)
def invalid(error: RegistrationError):
    db.session.rollback()
    return jsonify(error=error.error, error_description=str(error)), 400


def _metadata(body) -> dict:
    if not isinstance(body, dict):
        raise RegistrationError("the body must be a JSON object")
    meta = {k: v for k, v in body.items() if k not in IGNORED}
    response_types = meta.pop("response_types", ["code"])
    if response_types != ["code"]:
        raise RegistrationError("response_types: only [\"code\"]", "response_types")
    if "jwks_uri" in meta:
        raise RegistrationError("jwks_uri is not supported: send jwks", "jwks_uri")
    if "redirect_uris" not in meta:
        raise RegistrationError("redirect_uris: required", "redirect_uris")
    return meta


def _answer(client, secret: str | None, registration_token: str | None, status: int):
    issuer = current_app.extensions["psc_idp"].settings["issuer"]
    body = clients.describe(client)
    body.update(client_secret_expires_at=0,
                registration_client_uri=f"{issuer}{PATH}/{client.client_id}")
    if secret:
        body["client_secret"] = secret
    if registration_token:
        body["registration_access_token"] = registration_token
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post(PATH)
def register():
    key = models.find_valid(bearer(), "registration")
    if key is None:
        return unauthorized("a valid initial access token is required")
    meta = _metadata(request.get_json(silent=True))
    meta.setdefault("client_name", "unnamed client")
    client, secret = clients.register(meta, actor=f"dynamic:{key.id}", registered_by="dynamic")
    token = secrets.token_urlsafe(32)
    client.registration_token_hash = digest(token)
    if key.uses_left is not None:
        key.uses_left -= 1
    db.session.commit()
    return _answer(client, secret, token, 201)


class InvalidRegistrationToken(Exception):
    pass


@bp.errorhandler(InvalidRegistrationToken)
def invalid_token(error: InvalidRegistrationToken):
    return unauthorized("invalid registration access token")


def _managed(client_id: str):
    """The client whose registration access token the request presents (RFC 7592 §3)."""
    client = clients.find(client_id)
    token = bearer()
    if client is None or not client.registration_token_hash or not token or \
            not secrets.compare_digest(client.registration_token_hash, digest(token)):
        raise InvalidRegistrationToken
    return client


@bp.get(f"{PATH}/<client_id>")
def read(client_id):
    client = _managed(client_id)
    return _answer(client, None, None, 200)


@bp.put(f"{PATH}/<client_id>")
def replace(client_id):
    client = _managed(client_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("client_id") != client_id:
        raise RegistrationError("the body must be the client's metadata with its client_id")
    if "client_secret" in body and not secrets.compare_digest(
            client.secret_hash or "", digest(str(body["client_secret"]))):
        raise RegistrationError("client_secret does not match", "client_secret")
    meta = _metadata({k: v for k, v in body.items() if k not in READ_ONLY})
    # RFC 7592 §2.2: omitted fields are reset to their defaults (the authentication
    # method, PKCE and the PSC compatibility settings, which RFC 7591 clients do not send,
    # are kept)
    reset = {k: v for k, v in clients.DEFAULTS.items() if k not in KEPT_ON_REPLACE}
    full = {**reset, "client_name": client.name, **meta}
    secret = clients.update_client(client, full, actor=f"dynamic:{client_id}")
    return _answer(client, secret, None, 200)


@bp.delete(f"{PATH}/<client_id>")
def deregister(client_id):
    client = _managed(client_id)
    clients.delete_client(client, actor=f"dynamic:{client_id}")
    return "", 204
