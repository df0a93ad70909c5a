"""Generated hostile bodies at every JSON API operation — the admin API and dynamic
registration (RFC 7591/7592) — in process (Flask's test client) on both databases. The
bodies come from the served OpenAPI document: each field drawn either from its own schema
or from any JSON at all, plus unknown fields, non-objects and raw bytes. Whatever arrives,
the answer is never a 5xx nor a stack trace, nothing is logged as an error, and the status
and body are the ones the document gives for that operation."""

from __future__ import annotations

import logging

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from psc_idp import create_app
from psc_idp.admin import models as keys
from psc_idp.admin.openapi import DOCUMENT

from .plugins.idp import base_settings

BASE_URL = "https://localhost:5443"
ISSUER_PATH = "/auth/realms/esante-wallet"
ADMIN = "/admin/api/v1"

URIS = ["https://rp.example/cb", "https://RP.example:443/cb", "http://localhost:8080/cb",
        "https://rp.example:99999/cb", "https://rp.example:0/", "https://@rp.example/cb",
        "https://rp.example/cb#", "https://*.rp.example/cb", "https://rp.example/c b",
        "https://rp.example/cb\x00", "https://[zz]/", "http://rp.example/cb", "javascript:x",
        "https://rp.example/a/../b", "https://rp.example/%zz", "https://rp.example/é", "",
        "https://" + "a" * 3000]
KEYS = [RSAKey.generate_key(2048).as_dict(private=False),
        {**ECKey.generate_key("P-256").as_dict(private=False), "alg": "ES256"},
        ECKey.generate_key("P-384").as_dict(private=False),
        OKPKey.generate_key("Ed25519").as_dict(private=False),
        OctKey.generate_key(256).as_dict(private=True),
        RSAKey.generate_key(2048).as_dict(private=True),
        {"kty": "RSA", "n": "sXch", "e": "AQAB"}, {"kty": "EC", "crv": "P-256", "x": "A"}]

#: any JSON value, nasty strings and numbers included
hostile = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18),
              st.floats(allow_nan=False), st.text(max_size=50),
              st.sampled_from(["", "\x00", "\ud800", "a" * 3000, "None", "null", *URIS])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def _resolve(schema: dict) -> dict:
    ref = schema.get("$ref")
    return DOCUMENT["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


#: plausible values of free-text fields, so that generated bodies get past the schema
SAMPLES = {"scope": ["openid scope_all", "openid", "openid email profile offline_access",
                     "scope_all", "openid bogus"],
           "contacts": ["ops@rp.example", "nobody"], "client_name": ["Cabinet", " ", "é" * 201]}
GOOD_URIS = ["https://rp.example/cb", "https://RP.example:443/cb?x=1",
             "http://localhost:8080/cb", "https://[::1]:8443/cb"]


def from_schema(schema: dict, name: str = ""):
    """Values the schema describes (URIs and keys: good and bad ones alike)."""
    schema = _resolve(schema)
    if name in SAMPLES and schema.get("type") == "string":
        return st.sampled_from(SAMPLES[name]) | st.text(max_size=20)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema:
        return st.one_of([from_schema(s, name) for s in schema["oneOf"]])
    kinds = schema.get("type", "string")
    if isinstance(kinds, list):
        return st.one_of([from_schema({**schema, "type": kind}, name) for kind in kinds])
    if kinds == "object":
        return _objects(schema)
    if kinds == "array":
        return st.lists(from_schema(schema.get("items", {}), name),
                        min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 4), 4))
    return {"null": st.none(), "boolean": st.booleans(),
            "integer": st.integers(schema.get("minimum", -10), schema.get("maximum", 10**6)),
            "string": _strings(schema)}[kinds]


def _strings(schema: dict):
    if schema.get("format") == "uri":
        return st.sampled_from(GOOD_URIS) | st.sampled_from(URIS)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    return st.text(max_size=min(schema.get("maxLength", 60), 60))


def _objects(schema: dict):
    properties = schema.get("properties", {})
    if set(properties) >= {"kty", "n", "e"}:  # a JWK: real keys of every kind, or junk
        return st.sampled_from(KEYS) | st.fixed_dictionaries(
            {}, optional={k: from_schema(v, k) | hostile for k, v in properties.items()})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {k: from_schema(v, k) for k, v in properties.items() if k in required},
        optional={k: from_schema(v, k) for k, v in properties.items() if k not in required})


def _mutated(body, name: str, value):
    return {**body, name: value} if isinstance(body, dict) else body


def bodies(schema_name: str):
    """Documented bodies; the same with one field (documented or not) set to any JSON, or
    a required one missing; or not an object at all."""
    schema = _resolve({"$ref": f"#/components/schemas/{schema_name}"})
    documented = from_schema(schema)
    names = st.sampled_from(sorted(schema["properties"])) | st.text(min_size=1, max_size=10)
    return st.one_of(
        documented, documented,
        st.builds(_mutated, documented, names, hostile),
        st.builds(lambda body: {k: v for k, v in body.items() if k != "redirect_uris"},
                  documented),
        hostile)


def operation(operation_id: str) -> dict:
    for item in DOCUMENT["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return op
    raise KeyError(operation_id)


#: the error codes each operation documents for 400
ERRORS_400 = {"rotateSecret": {"invalid_request", "invalid_client_metadata"}}
METADATA_ERRORS = {"invalid_client_metadata", "invalid_redirect_uri"}


def check(response, operation_id: str, caplog) -> None:
    """Never a 5xx or a stack trace; the status and body are documented for the
    operation; an error logged by the server fails the test."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text[:500]
    assert "Traceback" not in text
    spec = operation(operation_id)["responses"]
    assert str(response.status_code) in spec, (response.status_code, text[:300])
    content = spec[str(response.status_code)].get("content")
    if content:
        schema = {**content["application/json"]["schema"],
                  "components": DOCUMENT["components"]}
        jsonschema.validate(response.get_json(), schema)
    if response.status_code == 400:
        assert response.get_json()["error"] in ERRORS_400.get(operation_id, METADATA_ERRORS)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    caplog.clear()


@pytest.fixture
def inproc(keys_dir, database_url):
    """The app in this process with an admin token, an unlimited initial access token,
    a client to change and a dynamically registered one to manage."""
    app = create_app(base_settings(keys_dir, database_url))
    with app.app_context():
        from psc_idp.clients import create_client
        from psc_idp.extensions import db

        _, admin = keys.issue("admin", "hostile", 3600)
        _, iat = keys.issue("registration", "hostile", 3600, uses=None)
        client, _ = create_client(name="target", redirect_uris=["https://rp.example/cb"])
        http = app.test_client()
        registered = http.post(ISSUER_PATH + "/clients-registrations/openid-connect",
                               json={"redirect_uris": ["https://rp.example/cb"]},
                               base_url=BASE_URL, headers={"Authorization": f"Bearer {iat}"})
        yield Api(http, admin, iat, client.client_id, registered.get_json())
        db.session.remove()
        db.engine.dispose()


class Api:
    def __init__(self, http, admin, iat, client_id, registered):
        self.http, self.client_id, self.registered = http, client_id, registered
        self.admin_headers = {"Authorization": f"Bearer {admin}"}
        self.iat_headers = {"Authorization": f"Bearer {iat}"}

    def call(self, operation_id: str, headers: dict | None = None, **kwargs):
        """The operation's request (``json=`` or ``data=``)."""
        managed = ISSUER_PATH + "/clients-registrations/openid-connect/" + \
            self.registered["client_id"]
        token = self.registered["registration_access_token"]
        manage_headers = {"Authorization": f"Bearer {token}"}
        method, path, auth = {
            "createClient": ("POST", f"{ADMIN}/clients", self.admin_headers),
            "updateClient": ("PATCH", f"{ADMIN}/clients/{self.client_id}", self.admin_headers),
            "rotateSecret": ("POST", f"{ADMIN}/clients/{self.client_id}/secret",
                             self.admin_headers),
            "registerClient": ("POST", ISSUER_PATH + "/clients-registrations/openid-connect",
                               self.iat_headers),
            "replaceRegistration": ("PUT", managed, manage_headers),
        }[operation_id]
        return self.http.open(path, method=method, headers={**auth, **(headers or {})},
                              base_url=BASE_URL, **kwargs)


HOSTILE = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.data_too_large])
OPERATIONS = {"createClient": "NewClient", "updateClient": "ClientMetadata",
              "rotateSecret": "Rotation", "registerClient": "RegistrationRequest",
              "replaceRegistration": "RegistrationUpdate"}


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
@HOSTILE
@given(data=st.data())
def test_generated_bodies(inproc, caplog, operation_id, data):
    body = data.draw(bodies(OPERATIONS[operation_id]))
    if operation_id == "replaceRegistration" and isinstance(body, dict) and data.draw(
            st.booleans()):
        body["client_id"] = inproc.registered["client_id"]  # past the first check
    check(inproc.call(operation_id, json=body), operation_id, caplog)


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
@settings(HOSTILE, max_examples=40)
@given(raw=st.one_of(st.binary(max_size=300), st.sampled_from([
    b"", b"{", b"[]", b"null", b"NaN", b'{"a": NaN}', b'{"grace_seconds": Infinity}',
    b"\xff\xfe{}", b'{"client_name": "\\ud800"}', b"[" * 20000 + b"]" * 20000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000, b'{"grace_seconds": ' + b"9" * 5000 + b"}",
    b'"' + b"[" * 1000 + b'"'])),
    content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_raw_bodies(inproc, caplog, operation_id, raw, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = inproc.call(operation_id, data=raw, headers=headers)
    check(response, operation_id, caplog)


def test_oversized_body_is_413(inproc, caplog):
    body = b'{"client_name": "' + b"a" * (70 * 1024) + b'"}'
    for operation_id in ("createClient", "registerClient"):
        check(inproc.call(operation_id, data=body,
                          headers={"Content-Type": "application/json"}), operation_id, caplog)


def test_generator_reaches_past_the_schema(inproc, caplog):
    """The generated bodies are not all refused at the schema: documented ones register."""
    answer = inproc.call("registerClient", json={"redirect_uris": ["https://RP.example/cb"],
                                                 "client_name": "ok"})
    check(answer, "registerClient", caplog)
    assert answer.status_code == 201
