"""Dynamic client registration (RFC 7591) gated by initial access tokens that ops issue to a
vendor (``psc-idp clients issue-iat``), and client configuration management (RFC 7592) with
the registration access token returned at registration. Bodies are checked against the
served OpenAPI document (``admin.body``); the policy fields never go below what ops set
(``clients.policy``)."""

from __future__ import annotations

import secrets

from flask import Blueprint, jsonify

from .. import clients
from ..clients import RegistrationError, policy
from ..errors import PscError
from ..oidc.models import digest
from ..settings import current as settings
from . import body, models
from .auth import bearer, unauthorized

bp = Blueprint("registration", __name__)
PATH = "/clients-registrations/openid-connect"
#: informational RFC 7591 fields psc-idp accepts and does not keep
IGNORED = {"logo_uri", "client_uri", "policy_uri", "tos_uri", "software_id",
           "software_version"}
#: fields an RFC 7592 replacement keeps when it omits them (RFC 7591 clients do not know
#: them; the policy fields belong to ops)
KEPT_ON_REPLACE = {"token_endpoint_auth_method", "compat", "token_exchange_audiences",
                   *policy.POLICY_FIELDS}
#: fields of the server's answers: an update may repeat them unchanged (RFC 7592 §2.2)
READ_ONLY = {"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
             "registration_access_token", "registration_client_uri", "enabled",
             "registered_by", "secret_rotation_ends_at",
             # RFC 8693 audiences are ops' to grant (CLI, admin API), never the vendor's
             "token_exchange_audiences"}


def _metadata(meta: dict) -> dict:
    meta = {k: v for k, v in meta.items() if k not in IGNORED}
    meta.pop("response_types", None)  # the schema allows only ["code"]
    if "jwks_uri" in meta:
        raise RegistrationError("jwks_uri is not supported: send jwks", "jwks_uri")
    if meta.get("token_exchange_audiences"):
        raise RegistrationError("token_exchange_audiences: set by the IdP's operators, not "
                                "by registration", "token_exchange_audiences")
    return meta


def _answer(client, secret: str | None, registration_token: str | None, status: int):
    response = jsonify(_described(client, secret, registration_token))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _described(client, secret: str | None = None, registration_token: str | None = None):
    issuer = settings().issuer
    answer = clients.describe(client)
    answer.update(client_secret_expires_at=0,
                  registration_client_uri=f"{issuer}{PATH}/{client.client_id}")
    if secret:
        answer["client_secret"] = secret
    if registration_token:
        answer["registration_access_token"] = registration_token
    return answer


@bp.post(PATH)
def register():
    key = models.find_valid(bearer(), "registration")
    if key is None:
        return unauthorized("a valid initial access token is required")
    meta = _metadata(body.read("RegistrationRequest"))
    meta.setdefault("client_name", "unnamed client")
    meta = policy.at_least(clients.validate(meta), policy.registration_floor(key.policy))
    if not models.consume(key):
        return unauthorized("this initial access token has no registration left")
    token = secrets.token_urlsafe(32)
    client, secret = clients.register(meta, actor=f"dynamic:{key.id}", registered_by="dynamic",
                                      registration_token_hash=digest(token))
    return _answer(client, secret, token, 201)


class InvalidRegistrationToken(PscError):
    """RFC 7592 §2: a missing or wrong registration access token."""

    error, status, for_programs = "invalid_token", 401, True

    def __init__(self):
        super().__init__("invalid registration access token", headers={
            "WWW-Authenticate": 'Bearer realm="psc-idp", error="invalid_token"'})


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
    update = body.read("RegistrationUpdate")
    _same_read_only(client, update)
    meta = _metadata({k: v for k, v in update.items() if k not in READ_ONLY})
    # RFC 7592 §2.2: omitted fields are reset to their defaults, except those kept
    reset = {k: v for k, v in clients.DEFAULTS.items() if k not in KEPT_ON_REPLACE}
    full = {**reset, "client_name": client.name, **meta}
    policy.at_least(full, {k: v for k, v in policy.current_floor(client).items() if k in meta})
    secret = clients.update_client(client, full, actor=f"dynamic:{client_id}")
    return _answer(client, secret, None, 200)


def _same_read_only(client, update: dict) -> None:
    """RFC 7592 §2.2: the client_id and secret must be the client's; the server's other
    fields are ignored when they repeat its answer, refused when they differ."""
    if update["client_id"] != client.client_id:
        raise RegistrationError("client_id must be the client's own", "client_id")
    hashes = {"client_secret": [client.secret_hash, client.previous_secret_hash],
              "registration_access_token": [client.registration_token_hash]}
    current = _described(client)
    for field in sorted(READ_ONLY & set(update)):
        if field in hashes:
            same = any(h and secrets.compare_digest(h, digest(update[field]))
                       for h in hashes[field])
        else:
            same = update[field] == current.get(field)
        if not same:
            raise RegistrationError(f"{field} is set by the server and cannot be changed",
                                    field)


@bp.delete(f"{PATH}/<client_id>")
def deregister(client_id):
    client = _managed(client_id)
    clients.delete_client(client, actor=f"dynamic:{client_id}")
    return "", 204
