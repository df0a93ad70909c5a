"""The admin REST API (``/admin/api/v1``): the same client operations as the CLI, for
scripts; Bearer admin access tokens; every change audited with the key that made it."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from .. import clients
from ..clients import RegistrationError
from .auth import require_key
from .openapi import DOCUMENT

api = Blueprint("admin_api", __name__, url_prefix="/admin/api/v1")


def _actor() -> str:
    return f"admin-api:{g.access_key.id}"


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RegistrationError("the body must be a JSON object")
    return body


@api.errorhandler(RegistrationError)
def invalid(error: RegistrationError):
    return jsonify(error=error.error, error_description=str(error)), 400


def _not_found(client_id: str):
    return jsonify(error="not_found", error_description=f"no client {client_id[:64]!r}"), 404


def _client_or_404(client_id: str):
    return clients.find(client_id)


@api.get("/openapi.json")
def openapi():
    return jsonify(DOCUMENT)


@api.get("/clients")
@require_key("admin")
def list_clients():
    from ..oidc.models import Client

    return jsonify([clients.describe(c) for c in Client.query.order_by(Client.client_id)])


@api.post("/clients")
@require_key("admin")
def create_client():
    body = _body()
    client_id = body.pop("client_id", None)
    meta = clients.validate(body)
    client, secret = clients.create_client(
        name=meta.get("client_name", ""), redirect_uris=meta.get("redirect_uris", []),
        post_logout_redirect_uris=meta.get("post_logout_redirect_uris", []),
        auth_method=meta.get("token_endpoint_auth_method", "client_secret_basic"),
        client_id=client_id, jwks=meta.get("jwks"),
        id_token_alg=meta.get("id_token_signed_response_alg", "RS256"),
        userinfo_alg=meta.get("userinfo_signed_response_alg"),
        require_pkce=meta.get("require_pkce", True), compat=meta.get("compat", ()),
        contacts=meta.get("contacts", ()), grant_types=meta.get("grant_types"),
        scope=meta.get("scope", "openid scope_all"), actor=_actor(),
        registered_by="admin-api")
    return jsonify({**clients.describe(client), "client_secret": secret}), 201


@api.get("/clients/<client_id>")
@require_key("admin")
def get_client(client_id):
    client = _client_or_404(client_id)
    return jsonify(clients.describe(client)) if client else _not_found(client_id)


@api.patch("/clients/<client_id>")
@require_key("admin")
def update_client(client_id):
    client = _client_or_404(client_id)
    if client is None:
        return _not_found(client_id)
    secret = clients.update_client(client, _body(), actor=_actor())
    answer = clients.describe(client)
    if secret:
        answer["client_secret"] = secret
    return jsonify(answer)


@api.delete("/clients/<client_id>")
@require_key("admin")
def delete_client(client_id):
    client = _client_or_404(client_id)
    if client is None:
        return _not_found(client_id)
    clients.delete_client(client, actor=_actor())
    return "", 204


@api.post("/clients/<client_id>/secret")
@require_key("admin")
def rotate_secret(client_id):
    client = _client_or_404(client_id)
    if client is None:
        return _not_found(client_id)
    body = request.get_json(silent=True) or {}
    grace = body.get("grace_seconds", current_app.extensions["psc_idp"].settings[
        "client_secret_grace"]) if isinstance(body, dict) else None
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        raise RegistrationError("grace_seconds: a non-negative integer")
    secret = clients.rotate_secret(client, grace, actor=_actor())
    return jsonify({**clients.describe(client), "client_secret": secret})


@api.post("/clients/<client_id>/<any(enable, disable):action>")
@require_key("admin")
def toggle(client_id, action):
    client = _client_or_404(client_id)
    if client is None:
        return _not_found(client_id)
    clients.set_enabled(client, action == "enable", actor=_actor())
    return jsonify(clients.describe(client))
