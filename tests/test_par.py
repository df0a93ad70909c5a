"""Pushed authorization requests (RFC 9126) at PSC's path: the client authenticates as at
the token endpoint, the request is validated as the authorization endpoint would (errors
in JSON, never a redirection), and its ``request_uri`` is used once, briefly, by the
client that pushed it. In process (Flask's test client) on both databases, and one
journey over the real server with a card login."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import update

from psc_idp import create_app
from psc_idp.oidc.consts import PATHS

from .plugins.idp import base_settings
from .support import code_from, s256

ISSUER_PATH = "/auth/realms/esante-wallet"
BASE_URL = "https://localhost:5443"
ISSUER = BASE_URL + ISSUER_PATH
REDIRECT = "https://rp.example/cb"
VERIFIER = "v" * 50


class InProcess:
    """The app in this process and a way to register clients, push and authorize."""

    def __init__(self, app):
        self.app, self.http = app, app.test_client()

    def client(self, **registration) -> tuple[str, str | None]:
        from psc_idp.clients import create_client

        with self.app.app_context():
            client, secret = create_client(name="par", redirect_uris=[REDIRECT],
                                           **registration)
            return client.client_id, secret

    def request(self, client_id: str, /, **overrides) -> dict:
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
                  "scope": "openid scope_all", "state": "pushed-state", "nonce": "n-1",
                  "code_challenge": s256(VERIFIER), "code_challenge_method": "S256",
                  **overrides}
        return {k: v for k, v in params.items() if v is not None}

    def push(self, data: dict, client_id: str | None = None, secret: str | None = None):
        headers = {}
        if secret is not None:
            basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        return self.http.post(ISSUER_PATH + PATHS["pushed_authorization_request_endpoint"],
                              base_url=BASE_URL, data=data, headers=headers)

    def authorize(self, **query):
        return self.http.get(ISSUER_PATH + PATHS["authorization_endpoint"], base_url=BASE_URL,
                             query_string=urlencode(query))

    def pending_request(self) -> dict:
        """The parameters of the newest login transaction (what the login replays)."""
        from psc_idp.extensions import db
        from psc_idp.oidc.models import LoginTransaction

        with self.app.app_context():
            tx = db.session.query(LoginTransaction).order_by(
                LoginTransaction.expires_at.desc()).first()
            return dict(tx.params)


@pytest.fixture
def inproc(keys_dir, database_url):
    app = create_app(base_settings(keys_dir, database_url))
    yield InProcess(app)
    from psc_idp.extensions import db

    with app.app_context():
        db.engine.dispose()


def redirected(response) -> dict:
    assert response.status_code == 302, response.get_data(as_text=True)
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def goes_to_login(response) -> bool:
    return response.status_code == 302 and "/login?tx=" in response.headers["Location"]


def refused_with_a_page(response) -> bool:
    return response.status_code == 400 and "Location" not in response.headers


def pushed(inproc: InProcess, client_id: str, secret: str, **overrides) -> str:
    response = inproc.push(inproc.request(client_id, **overrides), client_id, secret)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["request_uri"]


# --- the push -----------------------------------------------------------------------------

def test_a_push_answers_a_short_lived_urn(inproc):
    client_id, secret = inproc.client()
    response = inproc.push(inproc.request(client_id), client_id, secret)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 60


def test_the_pushed_request_is_the_request(inproc):
    """RFC 9126 §4: parameters outside the pushed request are ignored; the login replays
    the pushed ones."""
    client_id, secret = inproc.client()
    request_uri = pushed(inproc, client_id, secret, state="the-pushed-state")
    response = inproc.authorize(client_id=client_id, request_uri=request_uri,
                                state="a-query-state", scope="openid", nonce="other",
                                redirect_uri="https://evil.example/cb")
    assert goes_to_login(response)
    stored = inproc.pending_request()
    assert stored["state"] == "the-pushed-state" and stored["nonce"] == "n-1"
    assert stored["redirect_uri"] == REDIRECT and stored["scope"] == "openid scope_all"
    assert "request_uri" not in stored


def test_a_request_uri_is_used_once(inproc):
    client_id, secret = inproc.client()
    request_uri = pushed(inproc, client_id, secret)
    assert goes_to_login(inproc.authorize(client_id=client_id, request_uri=request_uri))
    again = inproc.authorize(client_id=client_id, request_uri=request_uri)
    assert refused_with_a_page(again)
    page = again.get_data(as_text=True)
    assert '<code id="failure-code">invalid_request_uri</code>' in page
    assert "this request_uri is unknown, expired, already used" in page


def test_a_request_uri_raced_for_is_used_once(inproc):
    from .test_single_use import race

    client_id, secret = inproc.client()
    query = urlencode({"client_id": client_id,
                       "request_uri": pushed(inproc, client_id, secret)})
    answers = race(inproc, lambda http: http.get(
        ISSUER_PATH + PATHS["authorization_endpoint"] + "?" + query, base_url=BASE_URL))
    assert sum(goes_to_login(answer) for answer in answers) == 1
    assert all(refused_with_a_page(a) for a in answers if not goes_to_login(a))


def test_an_expired_request_uri_is_refused(inproc):
    from psc_idp.extensions import db
    from psc_idp.oidc.par import PushedRequest

    client_id, secret = inproc.client()
    request_uri = pushed(inproc, client_id, secret)
    with inproc.app.app_context():
        db.session.execute(update(PushedRequest).values(expires_at=PushedRequest.expires_at - 61))
        db.session.commit()
    assert refused_with_a_page(inproc.authorize(client_id=client_id, request_uri=request_uri))


def test_another_clients_request_uri_is_refused_and_stays_usable(inproc):
    owner, secret = inproc.client()
    thief, _ = inproc.client()
    request_uri = pushed(inproc, owner, secret)
    assert refused_with_a_page(inproc.authorize(client_id=thief, request_uri=request_uri))
    assert refused_with_a_page(inproc.authorize(request_uri=request_uri))
    assert goes_to_login(inproc.authorize(client_id=owner, request_uri=request_uri))


@pytest.mark.parametrize("request_uri", [
    "https://rp.example/request.jwt", "urn:ietf:params:oauth:request_uri:", "x",
    "urn:ietf:params:oauth:request_uri:" + "a" * 500, "urn:ietf:params:oauth:request_uri:nope",
])
def test_a_request_uri_not_issued_here_is_never_fetched(inproc, request_uri):
    client_id, _ = inproc.client()
    response = inproc.authorize(client_id=client_id, request_uri=request_uri,
                                redirect_uri=REDIRECT, state="s")
    assert redirected(response)["error"] == "invalid_request_uri"
    assert redirected(response)["state"] == "s"


@pytest.mark.parametrize("credentials", ["none", "wrong", "other client's"])
def test_an_unauthenticated_push_is_refused(inproc, credentials):
    client_id, secret = inproc.client()
    other_id, other_secret = inproc.client()
    auth = {"none": (None, None), "wrong": (client_id, "not-the-secret"),
            "other client's": (other_id, other_secret)}[credentials]
    response = inproc.push(inproc.request(client_id), *auth)
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_client", "invalid_request")
    assert "Location" not in response.headers


@pytest.mark.parametrize("overrides, error", [
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"max_age": "-1"}, "invalid_request"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
    ({"client_id": "someone-else"}, "invalid_client"),
], ids=["redirect_uri", "response_type", "pkce-plain", "max_age", "response_mode",
        "request_uri", "client_id"])
def test_an_invalid_push_gets_a_json_error_never_a_redirection(inproc, overrides, error):
    client_id, secret = inproc.client()
    response = inproc.push(inproc.request(client_id, **overrides), client_id, secret)
    assert response.status_code == (401 if error == "invalid_client" else 400)
    assert "Location" not in response.headers
    assert response.get_json()["error"] == error


def test_a_public_client_pushes_with_its_client_id_and_pkce(inproc):
    client_id, _ = inproc.client(auth_method="none")
    assert inproc.push(inproc.request(client_id), client_id).status_code == 201
    no_pkce = inproc.push(inproc.request(client_id, code_challenge=None,
                                         code_challenge_method=None), client_id)
    assert no_pkce.status_code == 400 and no_pkce.get_json()["error"] == "invalid_request"


def test_prompt_none_may_be_pushed(inproc):
    client_id, secret = inproc.client()
    request_uri = pushed(inproc, client_id, secret, prompt="none")
    response = inproc.authorize(client_id=client_id, request_uri=request_uri)
    assert redirected(response)["error"] == "login_required"
    assert redirected(response)["state"] == "pushed-state"


def test_a_push_with_private_key_jwt(inproc, client_key):
    client_id, _ = inproc.client(auth_method="private_key_jwt", jwks=client_key.jwks)
    par_url = ISSUER + PATHS["pushed_authorization_request_endpoint"]
    for audience in (ISSUER, par_url):
        response = inproc.push({
            **inproc.request(client_id),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_key.assertion(client_id, audience)})
        assert response.status_code == 201, response.get_json()


# --- requiring PAR ------------------------------------------------------------------------

def test_a_client_may_be_required_to_push(inproc):
    client_id, secret = inproc.client(require_pushed_authorization_requests=True)
    answer = redirected(inproc.authorize(**inproc.request(client_id)))
    assert answer["error"] == "invalid_request" and answer["state"] == "pushed-state"
    assert "PAR" in answer["error_description"]
    request_uri = pushed(inproc, client_id, secret)
    assert goes_to_login(inproc.authorize(client_id=client_id, request_uri=request_uri))


def test_psc_does_not_require_par_and_discovery_says_so(inproc):
    client_id, _ = inproc.client()
    assert goes_to_login(inproc.authorize(**inproc.request(client_id)))
    meta = inproc.http.get(ISSUER_PATH + "/.well-known/openid-configuration",
                           base_url=BASE_URL).get_json()
    assert meta["pushed_authorization_request_endpoint"] == \
        ISSUER + "/protocol/openid-connect/ext/par/request"
    assert meta["require_pushed_authorization_requests"] is False
    assert meta["request_uri_parameter_supported"] is True
    assert meta["require_request_uri_registration"] is True


def test_the_server_may_require_par_of_every_client(keys_dir, database_url):
    app = create_app(base_settings(keys_dir, database_url,
                                   require_pushed_authorization_requests=True))
    inproc = InProcess(app)
    client_id, secret = inproc.client()
    assert redirected(inproc.authorize(**inproc.request(client_id)))["error"] == \
        "invalid_request"
    request_uri = pushed(inproc, client_id, secret)
    assert goes_to_login(inproc.authorize(client_id=client_id, request_uri=request_uri))
    meta = inproc.http.get(ISSUER_PATH + "/.well-known/openid-configuration",
                           base_url=BASE_URL).get_json()
    assert meta["require_pushed_authorization_requests"] is True
    from psc_idp.extensions import db

    with app.app_context():
        db.engine.dispose()


# --- the real server ----------------------------------------------------------------------

def test_a_pushed_request_then_a_card_login_gives_a_code(idp, browser, demo_card):
    rp = idp.rp(require_pushed_authorization_requests=True)
    pushed_params = dict(parse_qs(urlsplit(rp.authorization_url()).query))
    response = rp.post("pushed_authorization_request_endpoint",
                       {k: v[0] for k, v in pushed_params.items()})
    assert response.status_code == 201, response.text
    request_uri = response.json()["request_uri"]
    url = rp.url("authorization_endpoint") + "?" + urlencode(
        {"client_id": rp.client_id, "request_uri": request_uri})
    params = code_from(browser.with_card(demo_card, url))
    assert params["state"] == rp.state and params["iss"] == idp.issuer
    tokens = rp.exchange(params["code"]).json()
    assert rp.verify_id_token(tokens["id_token"])["nonce"] == rp.nonce
    again = browser.get(url)
    assert again.status_code == 400 and "Location" not in again.headers
    assert requests.get(rp.url("pushed_authorization_request_endpoint"), verify=idp.ca,
                        timeout=10).status_code == 405


# --- registration -------------------------------------------------------------------------

def test_the_cli_sets_par_and_request_object_metadata(inproc):
    from psc_idp.cli import main

    runner = inproc.app.test_cli_runner()
    created = runner.invoke(main, ["clients", "create", "--name", "par", "--redirect-uri",
                                   REDIRECT, "--require-par", "--request-object-alg", "PS256",
                                   "--strict-request-objects", "--json"])
    assert created.exit_code == 0, created.output
    described = json.loads(created.output)
    assert described["require_pushed_authorization_requests"] is True
    assert described["request_object_signing_alg"] == "PS256"
    assert described["strict_request_objects"] is True
    updated = runner.invoke(main, ["clients", "update", described["client_id"],
                                   "--no-require-par", "--request-object-alg", "any", "--json"])
    assert updated.exit_code == 0, updated.output
    described = json.loads(updated.output)
    assert described["require_pushed_authorization_requests"] is False
    assert described["request_object_signing_alg"] is None
    assert described["strict_request_objects"] is True
    refused = runner.invoke(main, ["clients", "update", described["client_id"],
                                   "--request-object-alg", "none"])
    assert refused.exit_code != 0


def test_a_vendor_cannot_drop_the_par_ops_required(inproc):
    """RFC 7592: the policy fields never go below what ops set (clients.policy)."""
    from psc_idp.clients import RegistrationError, find, policy

    client_id, _ = inproc.client(require_pushed_authorization_requests=True)
    with inproc.app.app_context():
        floor = policy.current_floor(find(client_id))
        with pytest.raises(RegistrationError, match="require_pushed_authorization_requests"):
            policy.at_least({"require_pushed_authorization_requests": False}, floor)
        assert policy.at_least({}, floor)["require_pushed_authorization_requests"] is True
        assert policy.registration_floor({"require_pushed_authorization_requests": True})[
            "require_pushed_authorization_requests"] is True
    from psc_idp.cli import main

    issued = inproc.app.test_cli_runner().invoke(main, ["clients", "issue-iat", "--require-par"])
    assert "require_pushed_authorization_requests=True" in issued.output, issued.output
