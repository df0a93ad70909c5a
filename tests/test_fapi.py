"""The FAPI 2.0 Security Profile switch (``fapi2_security_profile``), as protocol transcripts
in process (Flask's test client, both databases): a FAPI client authenticates with
private_key_jwt (a client secret is refused at registration), pushes its request (a plain
authorization request is refused) with PKCE S256, gets codes valid 60 s at most, and
DPoP-bound tokens only; the same client without the switch keeps PSC's defaults."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc.jwk import ECKey

from psc_idp import create_app
from psc_idp.clients import RegistrationError, create_client, update_client
from psc_idp.extensions import db
from psc_idp.oidc.consts import PATHS
from psc_idp.oidc.models import AuthorizationCode, Client, LoginSession, now

from .plugins.idp import base_settings
from .support import s256
from .test_dpop import proof
from .test_round_trips import BASE_URL, ID_NAT, ISSUER_PATH, REDIRECT

ISSUER = BASE_URL + ISSUER_PATH
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Fapi:
    """The app, a private_key_jwt client with the switch, a browser with an SSO session."""

    def __init__(self, app, client_key, **metadata):
        self.app, self.key, self.http = app, client_key, app.test_client()
        self.verifier = secrets.token_urlsafe(48)
        with app.app_context():
            client, _ = create_client(name="fapi", redirect_uris=[REDIRECT],
                                      auth_method="private_key_jwt", jwks=client_key.jwks,
                                      **metadata)
            self.client_id = client.client_id
            sid = secrets.token_urlsafe(24)
            db.session.add(LoginSession(sid=sid, id_nat=ID_NAT, auth_time=now(), acr="eidas1",
                                        amr=["sc", "pin", "mfa"], auth_mode="CARD",
                                        expires_at=now() + 3600))
            db.session.commit()
        with self.http.session_transaction() as cookie:
            cookie["sid"] = sid

    def authenticated(self, data: dict, endpoint: str) -> dict:
        return {**data, "client_assertion_type": ASSERTION,
                "client_assertion": self.key.assertion(self.client_id, ISSUER + PATHS[endpoint])}

    def request(self, **overrides) -> dict:
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": REDIRECT, "scope": "openid scope_all", "state": "s",
                  "code_challenge": s256(self.verifier), "code_challenge_method": "S256",
                  **overrides}
        return {k: v for k, v in params.items() if v is not None}

    def push(self, **overrides):
        return self.http.post(ISSUER_PATH + PATHS["pushed_authorization_request_endpoint"],
                              base_url=BASE_URL, data=self.authenticated(
                                  self.request(**overrides),
                                  "pushed_authorization_request_endpoint"))

    def authorize(self, **query) -> dict:
        answer = self.http.get(ISSUER_PATH + PATHS["authorization_endpoint"],
                               base_url=BASE_URL, query_string=urlencode(query))
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}

    def code(self) -> str:
        pushed = self.push()
        assert pushed.status_code == 201, pushed.get_json()
        return self.authorize(client_id=self.client_id,
                              request_uri=pushed.get_json()["request_uri"])["code"]

    def exchange(self, code: str, dpop: str | None = None):
        data = self.authenticated({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": REDIRECT, "code_verifier": self.verifier},
                                  "token_endpoint")
        return self.http.post(ISSUER_PATH + PATHS["token_endpoint"], base_url=BASE_URL,
                              data=data, headers={"DPoP": dpop} if dpop else {})

    def nonce(self) -> str:
        answer = self.exchange("no-such-code", proof(ECKey.generate_key("P-256")))
        assert answer.get_json()["error"] == "use_dpop_nonce"
        return answer.headers["DPoP-Nonce"]


@pytest.fixture
def app(keys_dir, database_url):
    app = create_app(base_settings(keys_dir, database_url, code_lifetime=600))
    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_fapi_client_gets_dpop_bound_tokens_through_par(app, client_key):
    fapi = Fapi(app, client_key, fapi2_security_profile=True)
    code = fapi.code()
    with app.app_context():
        row = db.session.scalars(db.select(AuthorizationCode).where(
            AuthorizationCode.client_id == fapi.client_id)).one()
        assert row.expires_at - now() <= 60  # code_lifetime is 600 for the others
    key = ECKey.generate_key("P-256")
    tokens = fapi.exchange(code, proof(key, nonce=fapi.nonce()))
    assert tokens.status_code == 200, tokens.get_json()
    assert tokens.get_json()["token_type"] == "DPoP"


def test_without_a_dpop_proof_no_token(app, client_key):
    fapi = Fapi(app, client_key, fapi2_security_profile=True)
    refused = fapi.exchange(fapi.code())
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_request"
    assert "sender-constrained" in refused.get_json()["error_description"]


def test_a_plain_authorization_request_is_refused(app, client_key):
    fapi = Fapi(app, client_key, fapi2_security_profile=True)
    answer = fapi.authorize(**fapi.request())
    assert answer["error"] == "invalid_request" and "PAR" in answer["error_description"]
    assert answer["iss"] == ISSUER  # RFC 9207, as the profile asks


def test_pkce_is_required(app, client_key):
    fapi = Fapi(app, client_key, fapi2_security_profile=True)
    refused = fapi.push(code_challenge=None, code_challenge_method=None)
    assert refused.status_code == 400 and "code_challenge" in refused.get_json()[
        "error_description"]


def test_without_the_switch_psc_defaults_hold(app, client_key):
    """The drop-in rule: the same client without the switch needs none of it."""
    plain = Fapi(app, client_key)
    code = plain.authorize(**plain.request())["code"]
    with app.app_context():
        row = db.session.scalars(db.select(AuthorizationCode).where(
            AuthorizationCode.client_id == plain.client_id)).one()
        assert row.expires_at - now() > 60
    tokens = plain.exchange(code)
    assert tokens.status_code == 200 and tokens.get_json()["token_type"] == "Bearer"


def test_a_client_secret_does_not_fit_the_profile(app):
    with app.app_context():
        with pytest.raises(RegistrationError) as refused:
            create_client(name="fapi secret", redirect_uris=[REDIRECT],
                          fapi2_security_profile=True)
        assert "private_key_jwt" in str(refused.value)
        client, _ = create_client(name="later", redirect_uris=[REDIRECT])
        client_id = client.client_id
        with pytest.raises(RegistrationError):
            update_client(client, {"fapi2_security_profile": True}, actor="test")
        assert db.session.get(Client, client_id).fapi2_security_profile is False


def test_the_cli_and_the_rfc7591_floor(app, client_key, tmp_path):
    import json

    from psc_idp.cli import main

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(client_key.jwks))
    cli = app.test_cli_runner()
    created = cli.invoke(main, ["clients", "create", "--name", "fapi cli", "--redirect-uri",
                                REDIRECT, "--auth-method", "private_key_jwt", "--jwks",
                                str(jwks), "--fapi2", "--json"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["fapi2_security_profile"] is True
    refused = cli.invoke(main, ["clients", "create", "--name", "fapi secret", "--redirect-uri",
                                REDIRECT, "--fapi2"])
    assert refused.exit_code == 1 and "private_key_jwt" in refused.output
    # a vendor cannot drop the switch its client was given by ops (an RFC 7592 update is
    # held to the client's current policy)
    from psc_idp.clients.policy import LooserThanPolicy, at_least, current_floor

    with app.app_context():
        client = db.session.get(Client, json.loads(created.stdout)["client_id"])
        with pytest.raises(LooserThanPolicy):
            at_least({"fapi2_security_profile": False}, current_floor(client))
