"""The OpenAPI 3.1 description of the admin API (served at ``/admin/api/v1/openapi.json``);
the tests validate every response against it."""

from __future__ import annotations

from ..keys.signer import SUPPORTED_ALGS
from ..oidc.consts import CLIENT_AUTH_METHODS

_URIS = {"type": "array", "items": {"type": "string", "format": "uri"}}
_ALG = {"type": "string", "enum": list(SUPPORTED_ALGS)}

METADATA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "client_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{3,64}$",
                      "description": "only at creation; default derived from the name"},
        "client_name": {"type": "string", "maxLength": 200},
        "redirect_uris": _URIS, "post_logout_redirect_uris": _URIS,
        "token_endpoint_auth_method": {"type": "string", "enum": list(CLIENT_AUTH_METHODS)},
        "jwks": {"type": ["object", "null"]},
        "scope": {"type": "string"},
        "grant_types": {"type": "array", "items": {
            "type": "string", "enum": ["authorization_code", "refresh_token"]}},
        "id_token_signed_response_alg": _ALG,
        "userinfo_signed_response_alg": {"type": ["string", "null"],
                                          "enum": [*SUPPORTED_ALGS, None]},
        "require_pkce": {"type": "boolean", "description": "PKCE S256 required (always for "
                         "public clients); default: pkce_required_for_confidential"},
        "strict_client_auth": {"type": "boolean", "description": "refuse credentials sent "
                               "with a second method or another method than registered"},
        "access_token_format": {"type": "string", "enum": ["psc", "rfc9068"],
                                "description": "psc: typ JWT with Keycloak's claims (PSC); "
                                               "rfc9068: typ at+jwt"},
        "refresh_reuse_grace": {"type": ["integer", "null"], "minimum": 0, "maximum": 60,
                                "description": "seconds a rotated refresh token may be "
                                               "reused; null: the server's setting"},
        "compat": {"type": "array", "items": {"type": "string"}},
        "contacts": {"type": "array", "items": {"type": "string"}},
    },
}

CLIENT = {
    "type": "object",
    "required": ["client_id", "client_name", "redirect_uris", "token_endpoint_auth_method",
                 "enabled", "grant_types", "scope"],
    "properties": {
        **METADATA["properties"],
        "response_types": {"type": "array", "items": {"const": "code"}},
        "enabled": {"type": "boolean"},
        "registered_by": {"type": "string", "enum": ["cli", "admin-api", "dynamic"]},
        "client_id_issued_at": {"type": "integer"},
        "secret_rotation_ends_at": {"type": ["integer", "null"]},
        "client_secret": {"type": ["string", "null"],
                          "description": "only in the answer that created it, shown once"},
    },
}

ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}


def _json(schema_ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


_ERRORS = {"401": _json("Error", "missing, invalid or expired admin token"),
           "404": _json("Error", "no such client")}
_ID = [{"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}]

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "psc-idp admin API", "version": "1",
             "description": "Relying-party administration. Every change is audited. "
                            "Authorization: Bearer <admin access token> "
                            "(`psc-idp admin issue-token`)."},
    "servers": [{"url": "/admin/api/v1"}],
    "security": [{"adminToken": []}],
    "components": {
        "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        "schemas": {"ClientMetadata": METADATA, "Client": CLIENT, "Error": ERROR,
                    "ClientList": {"type": "array",
                                   "items": {"$ref": "#/components/schemas/Client"}},
                    "Rotation": {"type": "object", "additionalProperties": False,
                                 "properties": {"grace_seconds": {"type": "integer",
                                                                  "minimum": 0}}}},
    },
    "paths": {
        "/clients": {
            "get": {"operationId": "listClients", "responses": {
                "200": _json("ClientList", "every client"), "401": _ERRORS["401"]}},
            "post": {"operationId": "createClient",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/ClientMetadata"}}}},
                     "responses": {"201": _json("Client", "created, with its secret"),
                                   "400": _json("Error", "invalid_client_metadata or "
                                                         "invalid_redirect_uri"),
                                   "401": _ERRORS["401"]}},
        },
        "/clients/{client_id}": {
            "parameters": _ID,
            "get": {"operationId": "getClient", "responses": {
                "200": _json("Client", "the client"), **_ERRORS}},
            "patch": {"operationId": "updateClient",
                      "requestBody": {"required": True, "content": {"application/json": {
                          "schema": {"$ref": "#/components/schemas/ClientMetadata"}}}},
                      "responses": {"200": _json("Client", "updated"),
                                    "400": _json("Error", "invalid metadata"), **_ERRORS}},
            "delete": {"operationId": "deleteClient", "responses": {
                "204": {"description": "deleted"}, **_ERRORS}},
        },
        "/clients/{client_id}/secret": {
            "parameters": _ID,
            "post": {"operationId": "rotateSecret",
                     "requestBody": {"required": False, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/Rotation"}}}},
                     "responses": {"200": _json("Client", "new secret (shown once); the old "
                                                          "one works for the grace period"),
                                   "400": _json("Error", "client without a secret"),
                                   **_ERRORS}},
        },
        "/clients/{client_id}/enable": {"parameters": _ID, "post": {
            "operationId": "enableClient",
            "responses": {"200": _json("Client", "enabled"), **_ERRORS}}},
        "/clients/{client_id}/disable": {"parameters": _ID, "post": {
            "operationId": "disableClient",
            "responses": {"200": _json("Client", "disabled: every request refused"),
                          **_ERRORS}}},
    },
}
