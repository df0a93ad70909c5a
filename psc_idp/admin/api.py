"""The admin REST API (``/admin/api/v1``): the same client operations as the CLI, for
scripts; Bearer admin access tokens; every change audited with the key that made it. Each
body is checked against the served OpenAPI document before it is read (``admin.body``)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from .. import clients
from ..errors import PscError
from ..settings import current as settings
from . import body
from .auth import require_key
from .openapi import DOCUMENT

api = Blueprint("admin_api", __name__, url_prefix="/admin/api/v1")


def _actor() -> str:
    return f"admin-api:{g.access_key.id}"


class UnknownClient(PscError):
    error, status, for_programs = "not_found", 404, True

    def __init__(self, client_id: str):
        super().__init__(f"no client {client_id[:64]!r}")


def _client(client_id: str):
    client = clients.find(client_id)
    if client is None:
        raise UnknownClient(client_id)
    return client


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
    metadata = body.read("NewClient")
    client_id = metadata.pop("client_id", None)
    client, secret = clients.register(metadata, client_id=client_id, actor=_actor(),
                                      registered_by="admin-api")
    return jsonify({**clients.describe(client), "client_secret": secret}), 201


@api.get("/clients/<client_id>")
@require_key("admin")
def get_client(client_id):
    return jsonify(clients.describe(_client(client_id)))


@api.patch("/clients/<client_id>")
@require_key("admin")
def update_client(client_id):
    client = _client(client_id)
    secret = clients.update_client(client, body.read("ClientMetadata"), actor=_actor())
    answer = clients.describe(client)
    if secret:
        answer["client_secret"] = secret
    return jsonify(answer)


@api.delete("/clients/<client_id>")
@require_key("admin")
def delete_client(client_id):
    client = _client(client_id)
    clients.delete_client(client, actor=_actor())
    return "", 204


@api.post("/clients/<client_id>/secret")
@require_key("admin")
def rotate_secret(client_id):
    client = _client(client_id)
    grace = body.read("Rotation", optional=True).get(
        "grace_seconds", settings().client_secret_grace)
    secret = clients.rotate_secret(client, grace, actor=_actor())
    return jsonify({**clients.describe(client), "client_secret": secret})


@api.post("/clients/<client_id>/<any(enable, disable):action>")
@require_key("admin")
def toggle(client_id, action):
    client = _client(client_id)
    clients.set_enabled(client, action == "enable", actor=_actor())
    return jsonify(clients.describe(client))
