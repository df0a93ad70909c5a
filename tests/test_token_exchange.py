"""Token exchange (RFC 8693), the Espace de Confiance's way, over real TLS on both
databases: an EDC-like relying party authenticates with its organisation certificate (key in
SoftHSM, curl + PKCS#11 engine) on the mTLS origin and exchanges a professional's access
token for a certificate-bound token for an API ops allowed it — and every refusal: an
audience not allowed, a revoked or expired subject token, a caller without mTLS, a
registration that grants itself audiences."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import update

from psc_idp.extensions import db
from psc_idp.keys import jws
from psc_idp.oidc.consts import PATHS
from psc_idp.oidc.models import Token

from .support import code_from
from .test_mtls import curl, idp, thumbprint  # noqa: F401 (the mTLS idp fixture)

API = "https://dmp.example/api"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def professional(idp, browser, demo_card):  # noqa: F811
    """An application's access token for the demo professional (a card login)."""
    app = idp.rp()
    code = code_from(browser.with_card(demo_card, app.authorization_url()))["code"]
    tokens = app.exchange(code).json()
    return app, tokens["access_token"]


def edc(idp, orgs, **extra) -> str:  # noqa: F811
    return idp.rp(auth_method="tls_client_auth",
                  tls_client_auth_subject_dn=orgs.good.subject_dn,
                  token_exchange_audiences=[API], **extra).client_id


def exchange(cards, idp, org, client_id: str, token: str, **extra):  # noqa: F811
    data = {"client_id": client_id, "grant_type": EXCHANGE, "subject_token": token,
            "subject_token_type": ACCESS_TOKEN, "audience": API, **extra}
    return curl(cards, org, idp.mtls + PATHS["token_endpoint"], data)


def claims_of(idp, token: str) -> dict:  # noqa: F811
    with idp.app.app_context():
        return jws.decode(token, idp.app.extensions["psc_idp"].keys.key_set(), typ="at+jwt")


def test_an_edc_client_exchanges_for_a_certificate_bound_token(idp, cards, orgs,  # noqa: F811
                                                              professional, demo_card):
    app, subject_token = professional
    caller = edc(idp, orgs)
    status, body = exchange(cards, idp, orgs.good, caller, subject_token)
    assert status == 200, body
    assert body["issued_token_type"] == ACCESS_TOKEN and body["token_type"] == "Bearer"
    claims = claims_of(idp, body["access_token"])
    assert claims["aud"] == API and claims["client_id"] == caller
    assert claims["cnf"] == {"x5t#S256": thumbprint(orgs.good)}
    assert claims["SubjectNameID"] == claims["preferred_username"] == demo_card.id_nat
    assert claims["family_name"] and claims["sub"].endswith(":" + demo_card.id_nat)
    assert claims["act"] == {"sub": caller, "client_id": caller}  # it acts for the app's user
    # a resource server introspects it: cnf and aud as in the token
    answer = app.post("introspection_endpoint", {"token": body["access_token"]}).json()
    assert answer["active"] is True and answer["aud"] == API
    assert answer["cnf"] == {"x5t#S256": thumbprint(orgs.good)}


def test_psc_edc_compatibility_value_of_cnf(idp, cards, orgs, professional):  # noqa: F811
    """PSC's EDC puts base64(hex(SHA-256)) in cnf.x5t#S256: the edc_x5t_hex compat flag."""
    _, subject_token = professional
    caller = edc(idp, orgs, compat=["edc_x5t_hex"])
    status, body = exchange(cards, idp, orgs.good, caller, subject_token)
    assert status == 200, body
    der = x509.load_pem_x509_certificate(Path(orgs.good.certificate).read_bytes()).public_bytes(
        serialization.Encoding.DER)
    expected = base64.b64encode(hashlib.sha256(der).hexdigest().encode()).decode()
    assert claims_of(idp, body["access_token"])["cnf"] == {"x5t#S256": expected}


def test_an_audience_not_allowed_is_refused(idp, cards, orgs, professional):  # noqa: F811
    _, subject_token = professional
    status, body = exchange(cards, idp, orgs.good, edc(idp, orgs), subject_token,
                            audience="https://other.example/api")
    assert (status, body["error"]) == (400, "invalid_target"), body
    plain = idp.rp(auth_method="tls_client_auth",
                   tls_client_auth_subject_dn=orgs.good.subject_dn).client_id
    status, body = exchange(cards, idp, orgs.good, plain, subject_token)
    assert (status, body["error"]) == (400, "unauthorized_client"), body


def test_a_revoked_or_expired_subject_token_is_refused(idp, cards, orgs,  # noqa: F811
                                                      professional):
    app, subject_token = professional
    caller = edc(idp, orgs)
    claims = claims_of_plain(idp, subject_token)
    with idp.app.app_context():
        db.session.execute(update(Token).where(Token.jti == claims["jti"])
                           .values(access_expires_at=0))
        db.session.commit()
    status, body = exchange(cards, idp, orgs.good, caller, subject_token)
    assert (status, body["error"]) == (400, "invalid_grant"), body
    with idp.app.app_context():
        db.session.execute(update(Token).where(Token.jti == claims["jti"])
                           .values(access_expires_at=claims["exp"]))
        db.session.commit()
    assert exchange(cards, idp, orgs.good, caller, subject_token)[0] == 200
    assert app.post("revocation_endpoint", {"token": subject_token}).status_code == 200
    status, body = exchange(cards, idp, orgs.good, caller, subject_token)
    assert (status, body["error"]) == (400, "invalid_grant"), body


def claims_of_plain(idp, token: str) -> dict:  # noqa: F811
    with idp.app.app_context():
        return jws.decode(token, idp.app.extensions["psc_idp"].keys.key_set())


def test_a_caller_without_mtls_is_refused(idp, cards, orgs, professional):  # noqa: F811
    _, subject_token = professional
    caller = edc(idp, orgs)
    status, body = exchange(cards, idp, None, caller, subject_token)  # no certificate
    assert (status, body["error"]) == (401, "invalid_client"), body
    secret_client = idp.rp(token_exchange_audiences=[API])  # client_secret_basic
    answer = secret_client.post("token_endpoint", {
        "grant_type": EXCHANGE, "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN, "audience": API})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize("extra, error", [
    ({"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
    ({"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
     "invalid_request"),
    ({"actor_token": "x", "actor_token_type": ACCESS_TOKEN}, "invalid_request"),
    ({"audience": ""}, "invalid_request"),
    ({"resource": "https://other.example/api"}, "invalid_request"),  # two targets
    ({"scope": "openid scope_all offline_access"}, "invalid_scope"),
    ({"subject_token": "not.a.token"}, "invalid_grant"),
])
def test_malformed_exchanges(idp, cards, orgs, professional, extra, error):  # noqa: F811
    _, subject_token = professional
    status, body = exchange(cards, idp, orgs.good, edc(idp, orgs), subject_token, **extra)
    assert (status, body["error"]) == (400, error), body


def test_audiences_are_ops_only(idp, cards, orgs):  # noqa: F811
    from .test_attacks_clients import Doors

    meta = requests.get(idp.issuer + "/.well-known/openid-configuration", verify=idp.ca,
                        timeout=10).json()
    assert EXCHANGE in meta["grant_types_supported"]
    doors = Doors(idp)
    refused = doors.register({"redirect_uris": ["https://rp.example/cb"],
                              "token_endpoint_auth_method": "tls_client_auth",
                              "tls_client_auth_subject_dn": orgs.good.subject_dn,
                              "token_exchange_audiences": [API]})
    assert refused.status_code == 400 and "operators" in refused.json()["error_description"]
    created = doors.admin("POST", "/clients", json={
        "client_name": "edc", "redirect_uris": ["https://rp.example/cb"],
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": orgs.good.subject_dn,
        "token_exchange_audiences": [API]})
    assert created.status_code == 201, created.text
    assert created.json()["token_exchange_audiences"] == [API]


def test_hostile_parameters_never_fail_the_server(idp, cards, orgs, professional):  # noqa: F811
    """Garbage in any parameter of the exchange: a JSON error, never a 5xx, no token row."""
    _, subject_token = professional
    caller = edc(idp, orgs)
    with idp.app.app_context():
        before = db.session.query(Token).count()
    for name in ("subject_token", "subject_token_type", "audience", "resource", "scope",
                 "requested_token_type"):
        for value in ("\x01", "é" * 3000, "%ff", "' OR 1=1 --", "{}"):
            status, body = exchange(cards, idp, orgs.good, caller, subject_token,
                                    **{name: value})
            assert 400 <= status < 500 and isinstance(body, dict) and body["error"], (
                name, value, status, body)
    with idp.app.app_context():
        assert db.session.query(Token).count() == before
