"""The PSC client zoo: each test plays a client behaviour seen in published Pro Santé Connect
integrations (psc.md §10) against a running psc-idp over HTTPS, with a real card login.
Where PSC is lenient the client must work unchanged; the strict behaviour is one
per-client setting away, and tested too."""

from __future__ import annotations

import base64
import json
import threading
import time
from html.parser import HTMLParser
from urllib.parse import urlencode

import jwt as pyjwt
import pytest
import requests

from .plugins.idp import free_port, running_idp
from .support import code_from, query

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def header_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def resource_server_check(idp, token: str, **options) -> dict:
    """What a resource server on a common JWT library does (PyJWT, like Spring Security's
    default decoder: signature against the JWKS, expiry, issuer; ``typ: JWT`` or none)."""
    jwks = pyjwt.PyJWKClient(idp.issuer + "/protocol/openid-connect/certs",
                             ssl_context=_ssl(idp))
    key = jwks.get_signing_key_from_jwt(token)
    return pyjwt.decode(token, key.key, algorithms=["RS256"], issuer=idp.issuer, **options)


def _ssl(idp):
    import ssl

    return ssl.create_default_context(cafile=idp.ca)


def login(idp, browser, card, rp, **params):
    """A card login for ``rp``'s authorization request; the redirect's parameters."""
    return code_from(browser.with_card(card, rp.authorization_url(**params)))


# --- no PKCE, no nonce (PHP League provider, OpenXtrem/jumbojett, Go, Keycloak brokers) ---

def test_confidential_client_without_pkce_nor_nonce(idp, browser, demo_card):
    rp = idp.rp()
    params = login(idp, browser, demo_card, rp, code_challenge=None,
                   code_challenge_method=None, nonce=None)
    assert params["state"] == rp.state
    tokens = rp.exchange(params["code"], verifier=None).json()
    claims = rp.verify_id_token(tokens["id_token"])
    assert "nonce" not in claims and claims["preferred_username"] == demo_card.id_nat
    assert rp.userinfo(tokens["access_token"]).json()["SubjectNameID"] == demo_card.id_nat


def test_pkce_sent_is_pkce_enforced(idp, browser, demo_card):
    rp = idp.rp()
    code = login(idp, browser, demo_card, rp)["code"]
    assert rp.exchange(code, verifier=None).json()["error"] == "invalid_request"
    assert rp.exchange(code, verifier="x" * 43).json()["error"] == "invalid_grant"


def test_pkce_downgrade_is_refused(idp, browser, demo_card):
    """RFC 9700 §4.8.2: a verifier for a code issued without a challenge is refused."""
    rp = idp.rp()
    code = login(idp, browser, demo_card, rp, code_challenge=None,
                 code_challenge_method=None)["code"]
    response = rp.exchange(code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_require_pkce_per_client(idp, browser, demo_card):
    rp = idp.rp(require_pkce=True)
    code_from(browser.with_card(demo_card, idp.rp().authorization_url()))  # SSO session
    refused = code_from(browser.get(rp.authorization_url(code_challenge=None,
                                                         code_challenge_method=None)))
    assert refused["error"] == "invalid_request" and refused["state"] == rp.state


# --- secret in the body or Basic, or both (ANS Keycloak connector, PHP League) -------------

def test_secret_by_either_method_at_every_endpoint(idp, browser, demo_card):
    rp = idp.rp()  # registered client_secret_basic
    code = login(idp, browser, demo_card, rp)["code"]
    tokens = rp.exchange(code, auth="post").json()  # as the ANS Keycloak connector
    assert "access_token" in tokens
    assert rp.post("introspection_endpoint", {"token": tokens["access_token"]},
                   auth="post").json()["active"] is True
    assert rp.refresh(tokens["refresh_token"], auth="basic").status_code == 200
    other = idp.rp(auth_method="client_secret_post")
    code = code_from(browser.get(other.authorization_url()))["code"]
    assert other.exchange(code, auth="basic").status_code == 200


def test_same_credentials_in_basic_and_body(idp, browser, demo_card):
    """The PHP League provider sends its credentials in Basic and in the body at once."""
    rp = idp.rp()
    tokens = rp.exchange(login(idp, browser, demo_card, rp)["code"], auth="both").json()
    assert "access_token" in tokens
    info = rp.post("introspection_endpoint", {"token": tokens["access_token"]}, auth="both")
    assert info.json()["active"] is True
    assert rp.refresh(tokens["refresh_token"], auth="both").status_code == 200
    assert rp.post("revocation_endpoint", {"token": tokens["access_token"]},
                   auth="both").status_code == 200


def test_conflicting_credentials_are_refused(idp, browser, demo_card):
    rp, other = idp.rp(), idp.rp()
    code = login(idp, browser, demo_card, rp)["code"]
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": rp.verifier}
    attempts = [
        # the body names another client, with its (valid) secret
        {"data": {**base, "client_id": other.client_id, "client_secret": other.client_secret},
         "auth": (rp.client_id, rp.client_secret)},
        # the body repeats the id with a wrong secret
        {"data": {**base, "client_id": rp.client_id, "client_secret": "wrong"},
         "auth": (rp.client_id, rp.client_secret)},
        # wrong Basic credentials are not rescued by a right body
        {"data": {**base, "client_id": rp.client_id, "client_secret": rp.client_secret},
         "auth": (rp.client_id, "wrong")},
    ]
    for attempt in attempts:
        response = requests.post(rp.url("token_endpoint"), verify=idp.ca, timeout=10,
                                 **attempt)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert rp.exchange(code).status_code == 200  # the code was never consumed


def test_strict_client_auth_per_client(idp, browser, demo_card):
    rp = idp.rp(strict_client_auth=True)
    code = login(idp, browser, demo_card, rp)["code"]
    for auth in ("both", "post"):
        response = rp.exchange(code, auth=auth)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert rp.exchange(code, auth="basic").status_code == 200


# --- refresh on every page load, concurrently (OpenXtrem) ----------------------------------

def test_concurrent_refreshes_within_the_grace(idp, browser, demo_card):
    rp = idp.rp()
    tokens = rp.exchange(login(idp, browser, demo_card, rp)["code"]).json()
    results: list[requests.Response] = []
    barrier = threading.Barrier(4)

    def refresh():
        barrier.wait()
        results.append(rp.refresh(tokens["refresh_token"]))

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200] * 4, [r.text for r in results]
    for result in results:  # nothing was revoked: every answer works
        answer = result.json()
        assert rp.userinfo(answer["access_token"]).status_code == 200
        assert rp.refresh(answer["refresh_token"]).status_code == 200
    assert rp.userinfo(tokens["access_token"]).status_code == 200


def test_refresh_reused_after_the_grace_revokes_the_chain(idp, browser, demo_card):
    rp = idp.rp(refresh_reuse_grace=1)
    tokens = rp.exchange(login(idp, browser, demo_card, rp)["code"]).json()
    second = rp.refresh(tokens["refresh_token"]).json()
    time.sleep(2.1)
    replays: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: replays.append(rp.refresh(
        tokens["refresh_token"]))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [(r.status_code, r.json()["error"]) for r in replays] == [(400, "invalid_grant")] * 3
    assert rp.userinfo(second["access_token"]).status_code == 401
    assert rp.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"


# --- tokens as PSC shapes them (Spring Security resource servers, Keycloak claims) --------

def test_access_token_in_psc_shape(idp, browser, demo_card):
    rp = idp.rp()
    params = login(idp, browser, demo_card, rp)
    tokens = rp.exchange(params["code"]).json()
    access = tokens["access_token"]
    assert header_of(access)["typ"] == "JWT"
    claims = resource_server_check(idp, access)
    for name in ("exp", "iat", "auth_time", "jti", "iss", "sub", "typ", "azp", "nonce",
                 "session_state", "acr", "scope", "email_verified", "preferred_username"):
        assert name in claims, name
    assert claims["typ"] == "Bearer" and claims["azp"] == rp.client_id
    assert claims["nonce"] == rp.nonce and claims["scope"] == "openid scope_all"
    assert claims["preferred_username"] == demo_card.id_nat
    assert claims["session_state"] == tokens["session_state"]
    refreshed = rp.refresh(tokens["refresh_token"]).json()
    assert resource_server_check(idp, refreshed["access_token"])["nonce"] == rp.nonce
    assert rp.userinfo(refreshed["access_token"]).status_code == 200


def test_rfc9068_access_tokens_per_client(idp, browser, demo_card):
    rp = idp.rp(access_token_format="rfc9068")
    access = rp.exchange(login(idp, browser, demo_card, rp)["code"]).json()["access_token"]
    assert header_of(access)["typ"] == "at+jwt"
    claims = resource_server_check(idp, access, audience=rp.client_id)
    assert claims["client_id"] == rp.client_id and claims["SubjectNameID"] == demo_card.id_nat
    assert rp.userinfo(access).status_code == 200


def test_introspection_as_psc_answers(idp, browser, demo_card):
    rp = idp.rp()
    tokens = rp.exchange(login(idp, browser, demo_card, rp)["code"]).json()
    access = rp.post("introspection_endpoint", {"token": tokens["access_token"]}).json()
    claims = resource_server_check(idp, tokens["access_token"])
    assert {k: access[k] for k in claims} == claims  # the token's own claims
    assert access["active"] is True and access["client_id"] == rp.client_id
    assert access["username"] == access["SubjectNameID"] == demo_card.id_nat
    refresh = rp.post("introspection_endpoint", {"token": tokens["refresh_token"],
                                                 "token_type_hint": "refresh_token"}).json()
    assert refresh["active"] is True and refresh["username"] == demo_card.id_nat
    assert refresh["typ"] == "Refresh" and "SubjectNameID" not in refresh
    assert refresh["session_state"] == access["session_state"]


def test_id_token_and_token_response_as_psc(idp, browser, demo_card):
    rp = idp.rp()
    tokens = rp.exchange(login(idp, browser, demo_card, rp)["code"]).json()
    claims = rp.verify_id_token(tokens["id_token"])
    assert claims["acr"] == "eidas1" and claims["auth_level"] == "1"
    assert claims["authMode"] == "CARD" and claims["scope"] == "openid scope_all"
    assert tokens["session_state"] == claims["sid"] == claims["session_state"]


def test_production_acr_is_one_setting_away(keys_dir, database_url, cards, smtp_server,
                                            tmp_path, browser_factory, demo_card):
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     acr={"card": "eidas2", "ecps": "eidas2"}) as live:
        rp = live.rp()
        params = login(live, browser_factory(live), demo_card, rp)
        claims = rp.verify_id_token(rp.exchange(params["code"]).json()["id_token"])
        assert claims["acr"] == "eidas2" and claims["auth_level"] == "1"
        doc = requests.get(live.issuer + "/.well-known/openid-configuration",
                           verify=live.ca, timeout=10).json()
        assert doc["acr_values_supported"] == ["eidas2"]


# --- scopes as older clients send them ------------------------------------------------------

def test_scope_all_without_openid(idp, browser, demo_card):
    rp = idp.rp()
    params = login(idp, browser, demo_card, rp, scope="scope_all")
    tokens = rp.exchange(params["code"]).json()
    assert tokens["scope"] == "scope_all" and "id_token" not in tokens
    userinfo = rp.userinfo(tokens["access_token"]).json()
    assert userinfo["SubjectRefPro"]["exercices"][0]["codeProfession"] == "10"


def test_other_psc_scope_names_are_accepted(idp, browser, demo_card):
    rp = idp.rp()
    params = login(idp, browser, demo_card, rp, scope="openid profile email scope_all "
                                                     "offline_access roles")
    tokens = rp.exchange(params["code"]).json()
    assert tokens["scope"] == "openid scope_all"  # what this client was registered for
    assert rp.verify_id_token(tokens["id_token"])["preferred_username"] == demo_card.id_nat
    only_profile = code_from(browser.get(rp.authorization_url(scope="profile email")))
    assert "code" in only_profile and only_profile["state"] == rp.state


def test_minimal_userinfo_without_scope_all(idp, browser, demo_card):
    rp = idp.rp()
    tokens = rp.exchange(login(idp, browser, demo_card, rp, scope="openid")["code"]).json()
    userinfo = rp.userinfo(tokens["access_token"]).json()
    assert userinfo == {
        "sub": f"f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:{demo_card.id_nat}",
        "preferred_username": demo_card.id_nat, "SubjectNameID": demo_card.id_nat,
        "given_name": "KIT", "family_name": "DOC0024566", "email_verified": False,
        "codeCivilite": "M", "authMode": "CARD"}


STRANGE_STATES = ["a b+c&d=e%20f", "état/?#ü", "x" * 1500, "'\"<>"]


@pytest.mark.parametrize("params", [
    {"max_age": "soon"}, {"response_mode": "fragment"}, {"request": "e30.e30."},
    {"request_uri": "https://rp.example/request.jwt"}, {"code_challenge_method": "plain"},
    {"prompt": "none"}, {"nonce": ["a", "b"]}, {"response_mode": ["query", "form_post"]},
], ids=lambda p: "-".join(p))
def test_every_error_redirect_keeps_state_byte_for_byte(idp, browser, params):
    rp = idp.rp()
    for state in STRANGE_STATES:
        url = rp.authorization_url(state=None) + "&" + urlencode({"state": state, **params},
                                                                 doseq=True)
        response = browser.get(url)
        assert response.status_code == 302, response.text
        answer = query(response.headers["Location"])
        assert answer["error"] and answer["state"] == state and answer["iss"] == idp.issuer


def test_state_survives_the_login_unchanged(idp, browser, demo_card):
    rp = idp.rp()
    rp.state = STRANGE_STATES[1] + STRANGE_STATES[0]
    params = login(idp, browser, demo_card, rp)
    assert params["state"] == rp.state and params["code"]


def test_request_objects_and_request_uris_are_refused_with_their_error(idp, browser):
    """A request object needs the client's registered keys; a request_uri is only one the
    PAR endpoint issued (tests/test_par.py, tests/test_request_objects.py)."""
    rp = idp.rp()
    assert code_from(browser.get(rp.authorization_url(request="e30.e30.")))["error"] == \
        "invalid_request_object"
    assert code_from(browser.get(rp.authorization_url(
        request_uri="urn:ietf:params:oauth:request_uri:x")))["error"] == \
        "invalid_request_uri"


# --- response modes -----------------------------------------------------------------------

class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.fields, self.scripts = None, {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs["action"]
        elif tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs["value"]
        elif tag == "script":
            self.scripts.append(attrs.get("src"))


def form_post(response: requests.Response) -> _Forms:
    assert response.status_code == 200, response.text
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    parsed = _Forms()
    parsed.feed(response.text)
    assert parsed.scripts and all(parsed.scripts)  # no inline script
    return parsed


def test_form_post_response_mode(idp, browser, demo_card):
    rp = idp.rp()
    page = form_post(browser.with_card(demo_card, rp.authorization_url(
        response_mode="form_post")))
    assert page.action == rp.redirect_uri
    assert page.fields["state"] == rp.state and page.fields["iss"] == idp.issuer
    assert rp.exchange(page.fields["code"]).status_code == 200
    error = form_post(browser.get(rp.authorization_url(response_mode="form_post",
                                                       max_age="never")))
    assert error.fields["error"] == "invalid_request" and error.fields["state"] == rp.state


@pytest.mark.parametrize("mode", ["fragment", "query.jwt", "jwt", "web_message"])
def test_other_response_modes_are_refused(idp, browser, mode):
    rp = idp.rp()
    answer = code_from(browser.get(rp.authorization_url(response_mode=mode)))
    assert answer["error"] == "invalid_request" and answer["state"] == rp.state


def test_form_post_submits_itself_in_a_real_browser(idp, browser, demo_card, chromium):
    """Chromium, with JavaScript and the page's CSP, posts the response to the client."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = {}

    class Client(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers["Content-Length"])
            received.update(query("?" + self.rfile.read(length).decode()))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self):  # noqa: N802 - the browser's favicon request
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Client)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        redirect_uri = f"http://localhost:{port}/cb"
        with idp.app.app_context():
            from psc_idp.clients import create_client

            client, _ = create_client(name="form post app", redirect_uris=[redirect_uri])
            client_id = client.client_id
        code_from(browser.with_card(demo_card, idp.rp().authorization_url()))  # SSO session
        context = chromium.new_context(ignore_https_errors=True)
        origin = idp.issuer.split("/auth/")[0]  # host-only cookies, as __Host- requires
        context.add_cookies([{"name": c.name, "value": c.value, "url": origin,
                              "secure": True} for c in browser.session.cookies])
        page = context.new_page()
        errors = []
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" else None)
        page.goto(idp.issuer + "/protocol/openid-connect/auth?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
            "scope": "openid scope_all", "state": "s t&a=te", "response_mode": "form_post"}))
        page.wait_for_url(redirect_uri, timeout=10_000)
        context.close()
    finally:
        server.shutdown()
        server.server_close()
    assert received["state"] == "s t&a=te" and received["code"], received
    assert not errors  # no CSP violation


# --- the split authorization host (ANS mod_auth_openidc PoC, hard-coded PSC hosts) ----------

@pytest.fixture
def wallet_idp(keys_dir, database_url, cards, smtp_server, tmp_path):
    port = free_port()
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     authorization_endpoint=f"https://localhost:{port}/auth",
                     wallet_listen=f"127.0.0.1:{port}") as live:
        live.wallet = f"https://localhost:{port}/auth"
        yield live


def test_split_authorization_host(wallet_idp, browser_factory, demo_card):
    live, browser = wallet_idp, browser_factory(wallet_idp)
    doc = requests.get(live.issuer + "/.well-known/wallet-openid-configuration",
                       verify=live.ca, timeout=10).json()
    assert doc["authorization_endpoint"] == live.wallet
    rp = live.rp()
    standard = rp.authorization_url()
    hard_coded = live.wallet + "?" + standard.split("?", 1)[1]  # as integrators write it
    handed_over = browser.get(hard_coded)
    assert handed_over.status_code == 307
    assert handed_over.headers["Location"] == standard
    params = code_from(browser.with_card(demo_card, handed_over.headers["Location"]))
    assert params["state"] == rp.state and rp.exchange(params["code"]).status_code == 200
    posted = requests.post(live.wallet, data=query(standard), verify=live.ca, timeout=10,
                           allow_redirects=False)
    assert posted.status_code == 307  # a POSTed request keeps its body on the way


# --- userinfo: the token in the body (RFC 6750 §2.2) ---------------------------------------

def test_userinfo_token_in_the_form_body(idp, browser, demo_card):
    rp = idp.rp()
    access = rp.exchange(login(idp, browser, demo_card, rp)["code"]).json()["access_token"]
    url = rp.url("userinfo_endpoint")
    body = requests.post(url, data={"access_token": access}, verify=idp.ca, timeout=10)
    assert body.status_code == 200 and body.json()["SubjectNameID"] == demo_card.id_nat
    both = requests.post(url, data={"access_token": access}, verify=idp.ca, timeout=10,
                         headers={"Authorization": f"Bearer {access}"})
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    twice = requests.post(url, data=[("access_token", access), ("access_token", access)],
                          verify=idp.ca, timeout=10)
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_request"


# --- requests that must be refused ----------------------------------------------------------

def _assertion(claims: dict, header: dict, key=None) -> str:
    if key is None:  # alg none
        def part(data):
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
        return f"{part(header)}.{part(claims)}."
    return pyjwt.encode(claims, key, algorithm=header["alg"], headers=header)


@pytest.mark.parametrize("endpoint", ["token_endpoint", "introspection_endpoint",
                                      "revocation_endpoint"])
def test_client_assertion_for_a_client_without_keys(idp, client_key, endpoint):
    rp = idp.rp()  # a client_secret_basic client: no registered keys
    now = int(time.time())
    claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": rp.url(endpoint),
              "iat": now, "exp": now + 60, "jti": f"j{now}"}
    for assertion in (_assertion(claims, {"alg": "none"}),
                      _assertion(claims, {"alg": "RS256", "kid": "x"}, client_key.key)):
        data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion,
                "token": "t", "grant_type": "authorization_code", "code": "c",
                "redirect_uri": rp.redirect_uri}
        response = rp.post(endpoint, data, auth="none")
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("endpoint", ["token_endpoint", "introspection_endpoint",
                                      "revocation_endpoint"])
def test_repeated_parameters_are_invalid(idp, endpoint):
    rp = idp.rp()
    response = rp.post(endpoint, [("token", "a"), ("token", "b"),
                                  ("grant_type", "refresh_token")])
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
