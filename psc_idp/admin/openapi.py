"""The OpenAPI 3.1 description of the admin API and of dynamic registration (RFC 7591/7592),
served at ``/admin/api/v1/openapi.json``. Its schemas are the ones request bodies are
validated against (``admin.body``); the tests validate every response against it."""

from __future__ import annotations

from ..clients import ACCESS_TOKEN_FORMATS, MAX_SECRET_GRACE, MAX_URIS
from ..clients.jwks import ASSERTION_ALGS, MAX_KEYS
from ..clients.metadata import CLIENT_COMPAT_FLAGS
from ..keys.signer import SUPPORTED_ALGS
from ..oidc.consts import CIBA_DELIVERY_MODES, CIBA_GRANT_TYPE, CLIENT_AUTH_METHODS, GRANT_TYPES

_URI = {"type": "string", "format": "uri", "maxLength": 2000}
_URIS = {"type": "array", "maxItems": MAX_URIS, "items": _URI}
_ALG = {"type": "string", "enum": list(SUPPORTED_ALGS)}
_TEXT = {"type": "string", "maxLength": 200}

JWK = {
    "type": "object", "required": ["kty"], "maxProperties": 20,
    "description": "a public key: RSA (2048 bits or more), EC (P-256, P-384) or OKP "
                   "(Ed25519, Ed448); symmetric (oct) and private keys are refused; members "
                   "other than these are ignored (RFC 7517 §4)",
    "properties": {
        "kty": {"type": "string", "description": "RSA, EC or OKP"}, "kid": _TEXT,
        "use": {"type": "string", "description": "sig"},
        "alg": {"type": "string", "description": f"one of {', '.join(ASSERTION_ALGS)}"},
        "key_ops": {"type": "array", "maxItems": 10, "items": {"type": "string"},
                    "description": '["verify"]'},
        **{m: {"type": "string", "maxLength": 2048} for m in ("n", "e", "crv", "x", "y")},
        "x5c": {"type": "array", "maxItems": 10, "items": {"type": "string"}},
        "x5t": {"type": "string"}, "x5t#S256": {"type": "string"},
    },
}

_FIELDS = {
    "client_name": {"type": "string", "minLength": 1, "maxLength": 200},
    "redirect_uris": {**_URIS, "minItems": 1,
                      "description": "stored normalised (lower-case scheme and host, no "
                                     "default port); matched exactly"},
    "post_logout_redirect_uris": _URIS,
    "token_endpoint_auth_method": {"type": "string", "enum": list(CLIENT_AUTH_METHODS)},
    "jwks": {"oneOf": [{"type": "null"}, {
        "type": "object", "required": ["keys"], "additionalProperties": False,
        "properties": {"keys": {"type": "array", "maxItems": MAX_KEYS, "items": JWK}}}]},
    "scope": {"type": "string", "maxLength": 400},
    "grant_types": {"type": "array", "minItems": 1, "maxItems": 4,
                    "items": {"type": "string", "enum": [*GRANT_TYPES, CIBA_GRANT_TYPE]}},
    "id_token_signed_response_alg": _ALG,
    "userinfo_signed_response_alg": {"enum": [*SUPPORTED_ALGS, None]},
    "require_pkce": {"type": "boolean", "description": "PKCE S256 required (always for "
                     "public clients); default: pkce_required_for_confidential"},
    "strict_client_auth": {"type": "boolean", "description": "refuse credentials sent "
                           "with a second method or another method than registered"},
    "access_token_format": {"type": "string", "enum": list(ACCESS_TOKEN_FORMATS),
                            "description": "psc: typ JWT with Keycloak's claims (PSC); "
                                           "rfc9068: typ at+jwt"},
    "refresh_reuse_grace": {"type": ["integer", "null"], "minimum": 0, "maximum": 60,
                            "description": "seconds a rotated refresh token may be "
                                           "reused; null: the server's setting"},
    "dpop_bound_access_tokens": {"type": "boolean", "description": "RFC 9449 §5.2: every "
                                 "token request must carry a DPoP proof (DPoP-bound "
                                 "tokens only)"},
    "tls_client_auth_subject_dn": {"type": ["string", "null"], "maxLength": 1000,
                                   "description": "RFC 8705 §2.1.2: tls_client_auth matches "
                                   "the certificate's subject DN, RFC 4514 (e.g. CN=…,"
                                   "OU=<structure id>,O=…,C=FR); stored normalised"},
    **{f"tls_client_auth_san_{kind}": {"type": ["string", "null"], "maxLength": 1000,
                                       "description": f"RFC 8705 §2.1.2: tls_client_auth "
                                       f"matches this {what} subjectAltName entry instead"}
       for kind, what in (("dns", "dNSName"), ("uri", "URI"), ("ip", "iPAddress"),
                          ("email", "rfc822Name"))},
    "token_exchange_audiences": {
        "type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 400},
        "description": "RFC 8693: the APIs this client may exchange a professional's access "
                       "token for, over mTLS (ops only: refused in dynamic registration)"},
    "tls_client_certificate_bound_access_tokens": {
        "type": "boolean", "description": "RFC 8705 §3: tokens bound to the client's TLS "
        "certificate (cnf.x5t#S256); token requests on the mTLS endpoint aliases"},
    "backchannel_logout_uri": {"oneOf": [{"type": "null"}, _URI], "description":
                               "OIDC Back-Channel Logout: logout tokens are POSTed here "
                               "(https; http on loopback in development mode)"},
    "backchannel_logout_session_required": {"type": "boolean", "description": "the "
                                            "logout token always carries sid (it always "
                                            "does)"},
    "backchannel_token_delivery_mode": {"enum": [*CIBA_DELIVERY_MODES, None], "description":
                                        "CIBA: poll or ping; null: the client may not use "
                                        "CIBA"},
    "backchannel_client_notification_endpoint": {
        "oneOf": [{"type": "null"}, _URI],
        "description": "CIBA ping mode: where the notification is POSTed"},
    "require_pushed_authorization_requests": {"type": "boolean", "description": "RFC 9126: "
                                              "authorization requests only through the PAR "
                                              "endpoint (default: false, as PSC)"},
    "request_object_signing_alg": {"enum": [*ASSERTION_ALGS, None], "description": "the "
                                   "one alg of the client's request objects (RFC 9101); "
                                   f"null: any of {', '.join(ASSERTION_ALGS)}"},
    "fapi2_security_profile": {"type": "boolean", "description": "FAPI 2.0 Security "
                               "Profile: PAR, PKCE S256, sender-constrained tokens, "
                               "private_key_jwt or mTLS, codes of at most 60 s"},
    "strict_request_objects": {"type": "boolean", "description": "only the request "
                               "object's parameters count (RFC 9101 section 5); default: "
                               "they take precedence over the query's (OIDC Core 6.1, PSC)"},
    "compat": {"type": "array", "maxItems": len(CLIENT_COMPAT_FLAGS),
               "items": {"type": "string", "enum": sorted(CLIENT_COMPAT_FLAGS)}},
    "contacts": {"type": "array", "maxItems": 10, "items": {"type": "string",
                                                             "maxLength": 199}},
}
_CLIENT_ID = {"type": "string", "pattern": "^[A-Za-z0-9._-]{3,64}$"}


def _object(properties: dict, required=(), **extra) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties,
            **({"required": list(required)} if required else {}), **extra}


#: PATCH: any of the fields, at least one
METADATA = _object(_FIELDS, minProperties=1)
NEW_CLIENT = _object({"client_id": {**_CLIENT_ID, "description": "default: derived from "
                                                                 "the name"}, **_FIELDS},
                     required=("client_name", "redirect_uris"))
#: RFC 7591 §2 informational fields: accepted, not kept
INFORMATIONAL = {**{name: _URI for name in ("logo_uri", "client_uri", "policy_uri",
                                           "tos_uri")},
                 "software_id": _TEXT, "software_version": _TEXT}
_REGISTRATION_FIELDS = {
    **_FIELDS, **INFORMATIONAL,
    "response_types": {"type": "array", "items": {"const": "code"}, "minItems": 1,
                       "maxItems": 1},
    "jwks_uri": {**_URI, "description": "refused: send jwks"},
}
REGISTRATION_REQUEST = _object(_REGISTRATION_FIELDS, required=("redirect_uris",))
_SERVER_FIELDS = {
    "client_id": _CLIENT_ID, "enabled": {"type": "boolean"},
    "registered_by": {"type": "string", "enum": ["cli", "admin-api", "dynamic"]},
    "client_id_issued_at": {"type": "integer"},
    "secret_rotation_ends_at": {"type": ["integer", "null"]},
}
_REGISTRATION_SERVER_FIELDS = {
    "client_secret": {"type": "string", "maxLength": 200},
    "client_secret_expires_at": {"type": "integer"},
    "registration_client_uri": {"type": "string", "maxLength": 2000},
    "registration_access_token": {"type": "string", "maxLength": 200},
}
#: RFC 7592 §2.2: the client's metadata as read, read-only fields ignored when unchanged
REGISTRATION_UPDATE = _object({**_REGISTRATION_FIELDS, **_SERVER_FIELDS,
                               **_REGISTRATION_SERVER_FIELDS},
                              required=("client_id", "redirect_uris"))

CLIENT = {
    "type": "object",
    "required": ["client_id", "client_name", "redirect_uris", "token_endpoint_auth_method",
                 "enabled", "grant_types", "scope"],
    "properties": {
        **_FIELDS, **_SERVER_FIELDS,
        "response_types": {"type": "array", "items": {"const": "code"}},
        "client_secret": {"type": ["string", "null"],
                          "description": "only in the answer that created it, shown once"},
    },
}
REGISTRATION = {**CLIENT, "properties": {**CLIENT["properties"],
                                         **_REGISTRATION_SERVER_FIELDS}}
ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}
ROTATION = _object({"grace_seconds": {"type": "integer", "minimum": 0,
                                      "maximum": MAX_SECRET_GRACE}})


def _json(schema_ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _body(schema_ref: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


_401 = _json("Error", "missing, invalid or expired token")
_404 = _json("Error", "no such client")
_413 = _json("Error", "body larger than 64 KiB")
_400 = _json("Error", "invalid_client_metadata or invalid_redirect_uri (RFC 7591 §3.2.2)")
_ID = [{"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_REGISTRATION_SERVER = [{"url": "{issuer}", "variables": {"issuer": {
    "default": "https://localhost:5443/auth/realms/esante-wallet",
    "description": "the issuer identifier"}}}]


def _op(operation_id: str, responses: dict, body: dict | None = None, **extra) -> dict:
    return {"operationId": operation_id, **({"requestBody": body} if body else {}),
            "responses": responses, **extra}


_ADMIN_PATHS = {
    "/clients": {
        "get": _op("listClients", {"200": _json("ClientList", "every client"), "401": _401}),
        "post": _op("createClient", {"201": _json("Client", "created, with its secret"),
                                     "400": _400, "401": _401, "413": _413},
                    _body("NewClient")),
    },
    "/clients/{client_id}": {
        "parameters": _ID,
        "get": _op("getClient", {"200": _json("Client", "the client"), "401": _401,
                                 "404": _404}),
        "patch": _op("updateClient", {"200": _json("Client", "updated"), "400": _400,
                                      "401": _401, "404": _404, "413": _413},
                     _body("ClientMetadata")),
        "delete": _op("deleteClient", {"204": {"description": "deleted: its tokens revoked, "
                                                              "its id never reused"},
                                       "401": _401, "404": _404}),
    },
    "/clients/{client_id}/secret": {"parameters": _ID, "post": _op(
        "rotateSecret", {"200": _json("Client", "new secret (shown once); the old one works "
                                                "for the grace period"),
                         "400": _json("Error", "invalid_request (body) or "
                                               "invalid_client_metadata (no secret)"),
                         "401": _401, "404": _404, "413": _413}, _body("Rotation", False))},
    "/clients/{client_id}/enable": {"parameters": _ID, "post": _op(
        "enableClient", {"200": _json("Client", "enabled (tokens revoked at disable stay "
                                                "revoked)"), "401": _401, "404": _404})},
    "/clients/{client_id}/disable": {"parameters": _ID, "post": _op(
        "disableClient", {"200": _json("Client", "disabled: every request refused, its "
                                                 "tokens revoked"), "401": _401,
                          "404": _404})},
}
_IAT = [{"initialAccessToken": []}]
_RAT = [{"registrationAccessToken": []}]
_REGISTRATION_PATHS = {
    "/clients-registrations/openid-connect": {"servers": _REGISTRATION_SERVER, "post": _op(
        "registerClient", {"201": _json("Registration", "registered (RFC 7591 §3.2.1)"),
                           "400": _400, "401": _401, "413": _413},
        _body("RegistrationRequest"), security=_IAT)},
    "/clients-registrations/openid-connect/{client_id}": {
        "servers": _REGISTRATION_SERVER, "parameters": _ID,
        "get": _op("readRegistration", {"200": _json("Registration", "RFC 7592 §2.1"),
                                        "401": _401}, security=_RAT),
        "put": _op("replaceRegistration", {"200": _json("Registration", "RFC 7592 §2.2"),
                                           "400": _400, "401": _401, "413": _413},
                   _body("RegistrationUpdate"), security=_RAT),
        "delete": _op("deleteRegistration", {"204": {"description": "RFC 7592 §2.3"},
                                             "401": _401}, security=_RAT),
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "psc-idp admin API and dynamic registration", "version": "1",
             "description": "Relying-party administration (every change audited; "
                            "Authorization: Bearer <admin access token> from `psc-idp "
                            "admin issue-token`) and RFC 7591/7592 registration under the "
                            "issuer (initial access tokens from `psc-idp clients "
                            "issue-iat`). Bodies are validated against these schemas."},
    "servers": [{"url": "/admin/api/v1"}],
    "security": [{"adminToken": []}],
    "components": {
        "securitySchemes": {k: {"type": "http", "scheme": "bearer"} for k in (
            "adminToken", "initialAccessToken", "registrationAccessToken")},
        "schemas": {"ClientMetadata": METADATA, "NewClient": NEW_CLIENT, "Client": CLIENT,
                    "Error": ERROR, "Rotation": ROTATION, "JWK": JWK,
                    "ClientList": {"type": "array",
                                   "items": {"$ref": "#/components/schemas/Client"}},
                    "RegistrationRequest": REGISTRATION_REQUEST,
                    "RegistrationUpdate": REGISTRATION_UPDATE,
                    "Registration": REGISTRATION},
    },
    "paths": {**_ADMIN_PATHS, **_REGISTRATION_PATHS},
}
