"""Relying-party administration through its three doors: the ``psc-idp clients`` CLI, the
admin REST API (every answer validated against the OpenAPI document psc-idp serves) and
dynamic registration (RFC 7591 / RFC 7592) gated by initial access tokens."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import requests

from psc_idp.admin import models as keys
from psc_idp.cli import main

from .support import code_from

ADMIN = "/admin/api/v1"


# --- CLI ---------------------------------------------------------------------------------

@pytest.fixture
def cli(idp):
    runner = idp.app.test_cli_runner()

    def run(*args):
        result = runner.invoke(main, list(args))
        return result.exit_code, result.output
    return run


def test_cli_client_lifecycle(idp, cli):
    code, out = cli("clients", "create", "--name", "Cabinet X", "--redirect-uri",
                    "https://app.example/cb", "--contact", "ops@app.example", "--json")
    assert code == 0
    created = json.loads(out)
    client_id, secret = created["client_id"], created["client_secret"]
    assert created["contacts"] == ["ops@app.example"]

    code, out = cli("clients", "update", client_id, "--redirect-uri", "https://app.example/v2",
                    "--userinfo-alg", "ES256", "--no-refresh", "--json")
    assert code == 0, out
    updated = json.loads(out)
    assert updated["redirect_uris"] == ["https://app.example/v2"]
    assert updated["userinfo_signed_response_alg"] == "ES256"
    assert updated["grant_types"] == ["authorization_code"]

    code, out = cli("clients", "update", client_id, "--redirect-uri", "http://app.example/cb")
    assert code == 1 and "must use https" in out and "Traceback" not in out
    code, out = cli("clients", "update", client_id)
    assert code == 1 and "nothing to change" in out

    code, out = cli("clients", "rotate-secret", client_id, "--grace", "600", "--json")
    new_secret = json.loads(out)["client_secret"]
    assert code == 0 and new_secret != secret
    with idp.app.app_context():
        from psc_idp.clients import find

        client = find(client_id)
        assert client.check_client_secret(secret) and client.check_client_secret(new_secret)
    code, out = cli("clients", "rotate-secret", client_id, "--grace", "0")
    with idp.app.app_context():
        client = find(client_id)
        assert not client.check_client_secret(new_secret)

    assert cli("clients", "disable", client_id)[0] == 0
    assert "disabled" in cli("clients", "list")[1]
    assert cli("clients", "enable", client_id)[0] == 0
    assert cli("clients", "delete", client_id) == (0, f"deleted {client_id}\n")
    code, out = cli("clients", "show", client_id)
    assert code == 1 and "no client" in out


def test_rotated_secret_grace_over_the_wire(idp, browser, demo_card, cli):
    rp = idp.rp()
    old = rp.client_secret
    rp.client_secret = json.loads(cli("clients", "rotate-secret", rp.client_id, "--grace",
                                      "600", "--json")[1])["client_secret"]
    params = code_from(browser.with_card(demo_card, rp.authorization_url()))
    rp.client_secret = old  # still accepted during the grace period
    assert rp.exchange(params["code"]).status_code == 200
    cli("clients", "rotate-secret", rp.client_id, "--grace", "0")
    response = rp.post("introspection_endpoint", {"token": "x"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_disabled_client_is_refused(idp, browser, cli):
    rp = idp.rp()
    cli("clients", "disable", rp.client_id)
    page = browser.get(rp.authorization_url())
    assert page.status_code == 400 and "Location" not in page.headers
    assert rp.post("introspection_endpoint", {"token": "x"}).status_code == 401


# --- admin API -----------------------------------------------------------------------------

@pytest.fixture
def admin(idp):
    """An HTTP client of the admin API checking every answer against the OpenAPI document."""
    with idp.app.app_context():
        _, token = keys.issue("admin", "tests", 3600)
    base = idp.issuer.split("/auth/")[0] + ADMIN
    document = requests.get(base + "/openapi.json", verify=idp.ca, timeout=10).json()
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["Client"])

    class Admin:
        url = base

        def call(self, method, path, operation, status, token=token, **kwargs):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = requests.request(method, base + path, headers=headers, verify=idp.ca,
                                        timeout=10, **kwargs)
            assert response.status_code == status, response.text
            spec = _operation(document, operation)["responses"][str(status)]
            if "content" in spec:
                schema = {**spec["content"]["application/json"]["schema"],
                          "components": document["components"]}
                jsonschema.validate(response.json(), schema)
            return response
    return Admin()


def test_cli_drop_in_settings(cli):
    """The per-client settings between PSC's behaviour (default) and the strict one."""
    code, out = cli("clients", "create", "--name", "Strict app", "--redirect-uri",
                    "https://app.example/cb", "--json")
    default = json.loads(out)
    assert code == 0 and default["require_pkce"] is False  # as PSC
    assert default["strict_client_auth"] is False and default["access_token_format"] == "psc"
    assert default["refresh_reuse_grace"] is None
    code, out = cli("clients", "update", default["client_id"], "--pkce", "--strict-client-auth",
                    "--access-token-format", "rfc9068", "--refresh-reuse-grace", "0", "--json")
    strict = json.loads(out)
    assert code == 0 and strict["require_pkce"] is True and strict["strict_client_auth"] is True
    assert strict["access_token_format"] == "rfc9068" and strict["refresh_reuse_grace"] == 0
    code, out = cli("clients", "update", default["client_id"], "--refresh-reuse-grace", "61")
    assert code == 2 and "61" in out and "Traceback" not in out
    code, out = cli("clients", "create", "--name", "Public", "--redirect-uri",
                    "https://app.example/cb", "--auth-method", "none", "--no-pkce", "--json")
    assert code == 0 and json.loads(out)["require_pkce"] is True  # public: always


def test_ops_can_require_pkce_of_every_new_client(keys_dir, database_url):
    from psc_idp import create_app
    from psc_idp.clients import create_client

    from .plugins.idp import base_settings

    app = create_app(base_settings(keys_dir, database_url, pkce_required_for_confidential=True))
    with app.app_context():
        client, _ = create_client(name="app", redirect_uris=["https://app.example/cb"])
        assert client.require_pkce is True
        from psc_idp.extensions import db

        db.session.remove()
        db.engine.dispose()


def _operation(document: dict, operation_id: str) -> dict:
    for item in document["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return op
    raise KeyError(operation_id)


def test_admin_api_lifecycle(idp, admin):
    created = admin.call("POST", "/clients", "createClient", 201, json={
        "client_name": "Hôpital Y", "redirect_uris": ["https://y.example/cb"],
        "token_endpoint_auth_method": "client_secret_post"}).json()
    assert created["client_secret"] and created["registered_by"] == "admin-api"
    cid = created["client_id"]
    assert cid in {c["client_id"] for c in admin.call("GET", "/clients", "listClients",
                                                       200).json()}
    got = admin.call("GET", f"/clients/{cid}", "getClient", 200).json()
    assert "client_secret" not in got or got["client_secret"] is None
    patched = admin.call("PATCH", f"/clients/{cid}", "updateClient", 200, json={
        "post_logout_redirect_uris": ["https://y.example/bye"]}).json()
    assert patched["post_logout_redirect_uris"] == ["https://y.example/bye"]
    rotated = admin.call("POST", f"/clients/{cid}/secret", "rotateSecret", 200,
                         json={"grace_seconds": 60}).json()
    assert rotated["client_secret"] != created["client_secret"]
    assert rotated["secret_rotation_ends_at"] is not None
    assert admin.call("POST", f"/clients/{cid}/disable", "disableClient",
                      200).json()["enabled"] is False
    assert admin.call("POST", f"/clients/{cid}/enable", "enableClient",
                      200).json()["enabled"] is True
    admin.call("DELETE", f"/clients/{cid}", "deleteClient", 204)
    admin.call("GET", f"/clients/{cid}", "getClient", 404)

    with idp.app.app_context():
        from psc_idp.audit import AuditEvent
        from psc_idp.extensions import db

        events = [e.event for e in db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.client_id == cid).order_by(AuditEvent.id))]
    assert events == ["client.created", "client.updated", "client.secret_rotated",
                      "client.disabled", "client.enabled", "client.deleted"]


@pytest.mark.parametrize("body,field", [
    ({"client_name": "x", "redirect_uris": ["http://x.example/cb"]}, "https"),
    ({"client_name": "x", "redirect_uris": []}, "redirect_uris"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb#f"]}, "fragment"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"], "scope": "email"},
     "scope"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"],
      "token_endpoint_auth_method": "private_key_jwt"}, "jwks"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"],
      "id_token_signed_response_alg": "none"}, "id_token_signed_response_alg"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"], "grant_types":
      ["implicit"]}, "grant_types"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"], "unknown": 1}, "unknown"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"],
      "access_token_format": "opaque"}, "access_token_format"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"],
      "refresh_reuse_grace": 3600}, "refresh_reuse_grace"),
    ({"client_name": "x", "redirect_uris": ["https://x.example/cb"],
      "strict_client_auth": "yes"}, "strict_client_auth"),
])
def test_admin_api_validation_errors(admin, body, field):
    error = admin.call("POST", "/clients", "createClient", 400, json=body).json()
    assert error["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}
    assert field in error["error_description"]


def test_admin_api_refuses_missing_expired_and_wrong_scope_tokens(idp, admin):
    admin.call("GET", "/clients", "listClients", 401, token=None)
    admin.call("GET", "/clients", "listClients", 401, token="psa_forged")
    with idp.app.app_context():
        _, iat = keys.issue("registration", "vendor", 3600)
        expired_key, expired = keys.issue("admin", "old", 3600)
        expired_key.expires_at = 0
        from psc_idp.extensions import db

        db.session.commit()
        revoked_key, revoked = keys.issue("admin", "gone", 3600)
        keys.revoke(revoked_key.id)
    for token in (iat, expired, revoked):
        admin.call("GET", "/clients", "listClients", 401, token=token)


# --- dynamic registration ------------------------------------------------------------------

def _registration_endpoint(idp) -> str:
    return requests.get(idp.issuer + "/.well-known/openid-configuration", verify=idp.ca,
                        timeout=10).json()["registration_endpoint"]


def test_dynamic_registration_and_management(idp, browser, demo_card, cli):
    code, out = cli("clients", "issue-iat", "--expires", "1h", "--uses", "1")
    iat = re.search(r"initial_access_token: (\S+)", out).group(1)
    endpoint = _registration_endpoint(idp)
    metadata = {"client_name": "Logiciel Z", "redirect_uris": ["https://rp.example/cb"],
                "post_logout_redirect_uris": ["https://rp.example/bye"],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"], "logo_uri": "https://z.example/logo.png",
                "require_pkce": True}
    registered = requests.post(endpoint, json=metadata, verify=idp.ca, timeout=10,
                               headers={"Authorization": f"Bearer {iat}"})
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert body["require_pkce"] is True
    for field in ("client_id", "client_secret", "registration_access_token",
                  "registration_client_uri", "client_id_issued_at"):
        assert body[field]
    assert body["client_secret_expires_at"] == 0

    # the client works: a full login
    from .support import RelyingParty

    rp = RelyingParty(idp.issuer, body["client_id"], body["client_secret"],
                      "https://rp.example/cb", idp.ca)
    assert rp.exchange(code_from(browser.with_card(demo_card, rp.authorization_url()))[
        "code"]).status_code == 200

    # the initial access token was good for one registration
    again = requests.post(endpoint, json=metadata, verify=idp.ca, timeout=10,
                          headers={"Authorization": f"Bearer {iat}"})
    assert again.status_code == 401

    manage = {"Authorization": f"Bearer {body['registration_access_token']}"}
    uri = body["registration_client_uri"]
    read = requests.get(uri, headers=manage, verify=idp.ca, timeout=10)
    assert read.status_code == 200 and "client_secret" not in read.json()
    assert requests.get(uri, headers={"Authorization": "Bearer nope"}, verify=idp.ca,
                        timeout=10).status_code == 401
    replaced = requests.put(uri, headers=manage, verify=idp.ca, timeout=10, json={
        "client_id": body["client_id"], "client_name": "Logiciel Z v2",
        "redirect_uris": ["https://rp.example/cb2"]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["redirect_uris"] == ["https://rp.example/cb2"]
    assert replaced.json()["post_logout_redirect_uris"] == []  # omitted = reset (RFC 7592)
    assert requests.delete(uri, headers=manage, verify=idp.ca, timeout=10).status_code == 204
    assert requests.get(uri, headers=manage, verify=idp.ca, timeout=10).status_code == 401


@pytest.mark.parametrize("metadata,error", [
    ({"client_name": "z", "redirect_uris": ["http://z.example/cb"]}, "invalid_redirect_uri"),
    ({"client_name": "z"}, "invalid_redirect_uri"),
    ({"client_name": "z", "redirect_uris": ["https://z.example/cb"],
      "response_types": ["token"]}, "invalid_client_metadata"),
    ({"client_name": "z", "redirect_uris": ["https://z.example/cb"],
      "jwks_uri": "https://z.example/jwks"}, "invalid_client_metadata"),
    ({"client_name": "z", "redirect_uris": ["https://z.example/cb"],
      "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "RSA",
                                                                         "d": "x"}]}},
     "invalid_client_metadata"),
])
def test_dynamic_registration_validation(idp, cli, metadata, error):
    iat = re.search(r"initial_access_token: (\S+)", cli("clients", "issue-iat")[1]).group(1)
    answer = requests.post(_registration_endpoint(idp), json=metadata, verify=idp.ca,
                           timeout=10, headers={"Authorization": f"Bearer {iat}"})
    assert answer.status_code == 400 and answer.json()["error"] == error


def test_registration_without_initial_access_token(idp):
    answer = requests.post(_registration_endpoint(idp), verify=idp.ca, timeout=10, json={
        "client_name": "z", "redirect_uris": ["https://z.example/cb"]})
    assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers


def test_openapi_document_is_the_validating_schema():
    """Every schema of the served document is valid JSON Schema 2020-12, and each request
    body the API documents is validated against it (admin.body)."""
    from psc_idp.admin import body
    from psc_idp.admin.openapi import DOCUMENT

    for schema in DOCUMENT["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    referenced = {op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                  .rsplit("/", 1)[1] for item in DOCUMENT["paths"].values()
                  for op in item.values() if isinstance(op, dict) and "requestBody" in op}
    assert referenced == {"NewClient", "ClientMetadata", "Rotation", "RegistrationRequest",
                          "RegistrationUpdate"}
    for name in referenced:
        with pytest.raises(body.BodyError, match="unknown field"):
            body.check({"client_id": "abc", "redirect_uris": ["https://a.example/"],
                        "client_name": "n", "not-a-field": 1}, name)
