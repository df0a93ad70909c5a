"""Generated hostile input at the e-CPS device API, in process (Flask's test client) on both
databases: activation bodies drawn from the endpoint's schema with fields set to any JSON,
decisions and device authentications validly signed by the enrolled phone's P-256 key but
carrying any header and claims, raw bytes, deep nesting and unstorable strings. Whatever
arrives, the answer is never a 5xx nor a stack trace, nothing is logged as an error, and a
refusal is ``{"error", "error_description"}`` with a status and code the API documents
(``psc_idp.ecps.api.ERRORS``)."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, RSAKey

from psc_idp import create_app
from psc_idp.ecps import service
from psc_idp.ecps.api import ERRORS

from .plugins.idp import base_settings

BASE_URL = "https://localhost:5443"
ISSUER = BASE_URL + "/auth/realms/esante-wallet"
API = "/auth/realms/esante-wallet/ecps/api"
KIT, JEAN, ADELI = "899700245667", "899700218896", "0123456789"
SUCCESS = {"activate": 201, "decision": 200, "pending": 200, "devices": 200}

NASTY = ["", "\x00", "\ud800", "a" * 5000, "null", "é", "' OR 1=1 --", "../../", "e30.e30.",
         "%00", "99999999999999999999", "ES256", "ecps-auth+jwt", "ecps-decision+jwt"]
#: any JSON value, nasty strings and numbers included
hostile = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10 ** 18),
              st.floats(allow_nan=False), st.text(max_size=40), st.sampled_from(NASTY)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign(header, claims, key: ec.EllipticCurvePrivateKey) -> str:
    """A compact JWS over any header and claims (what a tampered app could send), with a
    valid ES256 signature."""
    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return (signing_input + b"." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode()


class Phone:
    """The enrolled device (its private key) and a login request pending for it."""

    def __init__(self, key, device_id: str, request, qr_secret: str):
        self.key, self.device_id, self.qr_secret = key, device_id, qr_secret
        self.request_id, self.nonce, self.code = request.id, request.nonce, request.code


@pytest.fixture
def inproc(keys_dir, database_url):
    """KIT's phone enrolled, a login request pending for it, a QR secret still unused;
    code attempts unlimited so that generated bodies reach the comparison."""
    app = create_app(base_settings(keys_dir, database_url, ecps_otp_attempts=10 ** 6,
                                   ecps_otp_attempts_per_id_nat=10 ** 6))
    with app.app_context():
        from psc_idp.extensions import db

        key = ec.generate_private_key(ec.SECP256R1())
        public = ECKey.import_key(key.public_key()).as_dict(private=False)
        device = service.activate({"qr_secret": service.start_qr_activation(KIT),
                                   "public_jwk": public}, "192.0.2.0/24")
        request = service.start_login("tx-hostile", "", KIT, "hostile", "192.0.2.0/24")
        phone = Phone(key, device.id, request, service.start_qr_activation(KIT))
        yield app.test_client(), phone
        db.session.remove()
        db.engine.dispose()


def check(response, endpoint: str, caplog) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text[:500]
    assert "Traceback" not in text
    if response.status_code == SUCCESS[endpoint]:
        return
    documented = ERRORS[endpoint]
    assert response.status_code in documented or response.status_code == 405, \
        (response.status_code, text[:300])
    body = response.get_json()
    assert set(body) == {"error", "error_description"}, text[:300]
    assert body["error"] in documented.get(response.status_code, {"invalid_request"})
    errors = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, errors
    caplog.clear()


KEYS = [ECKey.generate_key("P-256").as_dict(private=False),
        ECKey.generate_key("P-256").as_dict(private=True),
        ECKey.generate_key("P-384").as_dict(private=False),
        RSAKey.generate_key(2048).as_dict(private=False),
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, {"kty": "EC"}]
eight_digits = st.from_regex(r"\A[0-9]{8}\Z")
codes = st.one_of(eight_digits, eight_digits, st.text(max_size=10))
fresh_key = st.builds(lambda: ECKey.generate_key("P-256").as_dict(private=False))
jwks = st.one_of(fresh_key, fresh_key, st.sampled_from(KEYS), hostile)


def activation_bodies(phone: Phone):
    by_qr = st.fixed_dictionaries(
        {"qr_secret": st.sampled_from([phone.qr_secret, "nope"]) | st.text(max_size=120),
         "public_jwk": jwks}, optional={"label": st.text(max_size=90)})
    by_codes = st.fixed_dictionaries(
        {"id_nat": st.sampled_from([JEAN, KIT, ADELI, "8", "a/b"]) | st.text(max_size=42),
         "sms_code": codes, "email_code": codes, "public_jwk": jwks},
        optional={"label": st.text(max_size=90)})
    documented = by_qr | by_codes
    names = st.sampled_from(["qr_secret", "id_nat", "sms_code", "email_code", "public_jwk",
                             "label"]) | st.text(min_size=1, max_size=10)
    return st.one_of(documented, documented,
                     st.builds(lambda body, name, value: {**body, name: value},
                               documented, names, hostile),
                     st.builds(lambda body, name: {k: v for k, v in body.items() if k != name},
                               documented, names),
                     st.builds(lambda a, b: {**a, **b}, by_qr, by_codes), hostile)


def headers(phone: Phone, typ: str):
    good = {"alg": "ES256", "typ": typ, "kid": phone.device_id}
    return st.one_of(st.just(good), st.just(good), st.builds(
        lambda name, value: {**good, name: value},
        st.sampled_from(["alg", "typ", "kid", "crit"]), hostile), hostile)


def claim_sets(good: dict):
    names = st.sampled_from(sorted(good)) | st.text(min_size=1, max_size=6)
    mutated = st.builds(lambda name, value: {**good, name: value}, names, hostile)
    return st.one_of(st.just(good), mutated, mutated,
                     st.builds(lambda name: {k: v for k, v in good.items() if k != name},
                               names), hostile)


def decision_tokens(phone: Phone):
    good = {"request": phone.request_id, "nonce": phone.nonce, "decision": "approve",
            "code": phone.code, "iat": int(time.time())}
    signed = st.builds(lambda h, c: sign(h, c, phone.key), headers(phone, "ecps-decision+jwt"),
                       claim_sets(good))
    return st.one_of(signed, signed, signed, st.sampled_from(NASTY), st.text(max_size=60))


#: what an HTTP header value can carry (no line breaks)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                             blacklist_characters="\x7f"), max_size=100)


def auth_tokens(phone: Phone):
    issued = int(time.time())
    good = {"iss": phone.device_id, "aud": ISSUER, "iat": issued, "exp": issued + 60,
            "jti": "j" * 8}
    signed = st.builds(lambda h, c, jti: sign(h, {**c, "jti": jti} if isinstance(c, dict)
                                              and "jti" in c else c, phone.key),
                       headers(phone, "ecps-auth+jwt"), claim_sets(good),
                       st.text(min_size=8, max_size=20))
    return st.one_of(signed, signed, header_text)


HOSTILE = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.data_too_large])


@HOSTILE
@given(data=st.data())
def test_generated_activations(inproc, caplog, data):
    http, phone = inproc
    body = data.draw(activation_bodies(phone))
    check(http.post(API + "/activate", json=body, base_url=BASE_URL), "activate", caplog)


@HOSTILE
@given(data=st.data())
def test_generated_decisions(inproc, caplog, data):
    http, phone = inproc
    documented = st.fixed_dictionaries({"decision": decision_tokens(phone)})
    body = data.draw(st.one_of(documented, documented, documented, hostile))
    check(http.post(API + "/decision", json=body, base_url=BASE_URL), "decision", caplog)


@settings(HOSTILE, max_examples=100)
@given(data=st.data(), endpoint=st.sampled_from(["pending", "devices"]),
       scheme=st.sampled_from(["ECPS "] * 6 + ["ECPS  ", "Bearer ", "", "ecps "]),
       wait=st.sampled_from(["0"] * 6 + ["", "-1", "1e3", "99999", "٣", "0000", "a", "\x00"]))
def test_generated_device_authentications(inproc, caplog, data, endpoint, scheme, wait):
    http, phone = inproc
    token = data.draw(auth_tokens(phone))
    query = {"wait": wait} if endpoint == "pending" else {}
    check(http.get(f"{API}/{endpoint}", query_string=query, base_url=BASE_URL,
                   headers={"Authorization": scheme + token}), endpoint, caplog)


@pytest.mark.parametrize("endpoint", ["activate", "decision"])
@settings(HOSTILE, max_examples=50)
@given(raw=st.one_of(st.binary(max_size=300), st.sampled_from([
    b"", b"{", b"[]", b"null", b"NaN", b'{"decision": NaN}', b'{"label": Infinity}',
    b"\xff\xfe{}", b'{"decision": "\\ud800"}', b'{"qr_secret": "\\u0000"}',
    b"[" * 20000 + b"]" * 20000, b'{"a":' * 20000 + b"1" + b"}" * 20000,
    b'{"decision": "' + b"a" * 9000 + b'"}', b'{"decision": ' + b"9" * 5000 + b"}",
    b'"' + b"[" * 1000 + b'"'])),
    content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_raw_bodies(inproc, caplog, endpoint, raw, content_type):
    http, _ = inproc
    response = http.post(f"{API}/{endpoint}", data=raw, base_url=BASE_URL,
                         headers={"Content-Type": content_type} if content_type else {})
    check(response, endpoint, caplog)


def test_oversized_bodies_are_413(inproc, caplog):
    http, _ = inproc
    for endpoint in ("activate", "decision"):
        for size in (9 * 1024, 70 * 1024):
            raw = b'{"decision": "' + b"a" * size + b'"}'
            response = http.post(f"{API}/{endpoint}", data=raw, base_url=BASE_URL,
                                 headers={"Content-Type": "application/json"})
            assert response.status_code == 413
            check(response, endpoint, caplog)


def test_generators_reach_past_the_edge(inproc, caplog):
    """Documented bodies are not all refused at the schema: the QR activation enrols and
    a signed denial is applied."""
    http, phone = inproc
    public = ECKey.generate_key("P-256").as_dict(private=False)
    enrolled = http.post(API + "/activate", base_url=BASE_URL,
                         json={"qr_secret": phone.qr_secret, "public_jwk": public})
    check(enrolled, "activate", caplog)
    assert enrolled.status_code == 201
    token = sign({"alg": "ES256", "typ": "ecps-decision+jwt", "kid": phone.device_id},
                 {"request": phone.request_id, "nonce": phone.nonce, "decision": "deny",
                  "iat": int(time.time())}, phone.key)
    denied = http.post(API + "/decision", json={"decision": token}, base_url=BASE_URL)
    check(denied, "decision", caplog)
    assert denied.get_json()["status"] == "denied"
