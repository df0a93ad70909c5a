"""Attacks on the protocol, each expected to fail cleanly (an RFC 6749/OIDC error on the
wire, a readable page for people, never a 500)."""

import base64
import json

import pytest
import requests

from psc_idp.keys import jws

from .support import Browser, code_from, s256


@pytest.fixture
def logged_in(idp, browser, demo_card):
    """A relying party holding a fresh code from a real card login."""
    rp = idp.rp()
    return rp, code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]


def test_replayed_code_fails_and_revokes_the_first_tokens(logged_in):
    rp, code = logged_in
    first = rp.exchange(code).json()
    replay = rp.exchange(code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert rp.userinfo(first["access_token"]).status_code == 401
    assert rp.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


def test_wrong_pkce_verifier(logged_in):
    rp, code = logged_in
    response = rp.exchange(code, verifier="x" * 50)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_missing_pkce_verifier(logged_in):
    rp, code = logged_in
    response = rp.exchange(code, verifier=None)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_code_of_another_client(idp, logged_in):
    _, code = logged_in
    other = idp.rp()
    other.verifier = logged_in[0].verifier
    assert other.exchange(code).json()["error"] == "invalid_grant"


def test_pkce_plain_is_refused(idp, browser):
    rp = idp.rp()
    response = browser.get(rp.authorization_url(code_challenge="a" * 43,
                                                code_challenge_method="plain"))
    params = code_from(response)
    assert params["error"] == "invalid_request" and params["state"] == rp.state
    assert params["iss"] == idp.issuer


@pytest.mark.parametrize("registration", [{"require_pkce": True}, {"auth_method": "none"}],
                         ids=["confidential-requiring-pkce", "public"])
def test_missing_pkce_is_refused(idp, browser, registration):
    rp = idp.rp(**registration)
    response = browser.get(rp.authorization_url(code_challenge=None,
                                                code_challenge_method=None))
    params = code_from(response)
    assert params["error"] == "invalid_request" and params["state"] == rp.state


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/cb", "https://rp.example/cb/../evil", "https://rp.example/cb?x=1",
    "https://rp.example/cb#frag", "https://RP.example/cb", "javascript:alert(1)",
])
def test_unregistered_redirect_uri_is_never_followed(idp, browser, redirect_uri):
    response = browser.get(idp.rp().authorization_url(redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "invalid" in response.text.lower()


def test_unknown_client_gets_a_page(idp, browser):
    response = browser.get(idp.rp().authorization_url(client_id="nobody"))
    assert response.status_code == 400 and "Location" not in response.headers


def test_wrong_client_secret(logged_in):
    rp, code = logged_in
    rp.client_secret = "not-the-secret"
    response = rp.exchange(code)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_reused_refresh_token_revokes_the_chain(idp, browser, demo_card):
    """A client with no reuse grace (the strict setting): any second use is a replay."""
    rp = idp.rp(refresh_reuse_grace=0)
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]
    first = rp.exchange(code).json()
    second = rp.refresh(first["refresh_token"]).json()
    reuse = rp.refresh(first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert rp.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
    assert rp.userinfo(second["access_token"]).status_code == 401


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_and_unsigned_access_tokens(logged_in):
    rp, code = logged_in
    access = rp.exchange(code).json()["access_token"]
    head, payload, sig = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["SubjectNameID"] = claims["preferred_username"] = "899700218896"
    forged = f"{head}.{_b64(claims)}.{sig}"
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(claims)}."
    for token in (forged, unsigned, access[:-4] + "AAAA", "garbage"):
        assert rp.userinfo(token).status_code == 401
        assert rp.post("introspection_endpoint", {"token": token}).json() == {"active": False}


def test_forged_id_token_hint_at_logout(idp, browser, logged_in):
    rp, code = logged_in
    id_token = rp.exchange(code).json()["id_token"]
    head, payload, sig = id_token.split(".")
    forged = f"{head}.{_b64({'sub': 'x', 'aud': rp.client_id})}.{sig}"
    url = rp.url("end_session_endpoint") + "?" + requests.compat.urlencode(
        {"id_token_hint": forged, "post_logout_redirect_uri": idp.logout_uri})
    response = browser.get(url)
    assert response.status_code == 400 and "Location" not in response.headers


def test_unregistered_post_logout_redirect_is_refused_and_ends_nothing(idp, browser, logged_in,
                                                                       card_curl):
    """Even from another browser (no SSO cookie) with a valid id_token_hint: the request
    is invalid, the session and its tokens live on."""
    rp, code = logged_in
    tokens = rp.exchange(code).json()
    url = rp.url("end_session_endpoint") + "?" + requests.compat.urlencode(
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"})
    for agent in (browser, Browser(idp.ca, card_curl)):
        response = agent.get(url)
        assert response.status_code == 400 and "Location" not in response.headers
        assert "https://evil.example/" in response.text  # the page names the culprit
    assert rp.userinfo(tokens["access_token"]).status_code == 200
    assert code_from(browser.get(rp.authorization_url(prompt="none")))["code"]


@pytest.mark.parametrize("data", [
    {},
    {"grant_type": "password", "username": "a", "password": "b"},
    {"grant_type": "authorization_code"},
    {"grant_type": "authorization_code", "code": "x" * 5000, "redirect_uri": "é"},
    {"grant_type": "refresh_token", "refresh_token": "\x00\x01"},
    {"grant_type": ["authorization_code", "refresh_token"], "code": "a"},
])
def test_malformed_token_requests(idp, data):
    response = idp.rp().post("token_endpoint", data)
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


@pytest.mark.parametrize("params", [
    {"response_type": "token"}, {"response_mode": "fragment"}, {"max_age": "-1"},
    {"prompt": "none login"}, {"code_challenge": "short"}, {"state": "x" * 3000},
])
def test_malformed_authorization_requests(idp, browser, params):
    response = browser.get(idp.rp().authorization_url(**params))
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert "error" in code_from(response)


def test_malformed_requests_elsewhere(idp):
    rp = idp.rp()
    assert rp.post("introspection_endpoint", {}).status_code == 400
    assert rp.post("revocation_endpoint", {}).status_code == 400
    assert requests.get(rp.url("userinfo_endpoint"), verify=idp.ca, timeout=10,
                        headers={"Authorization": "Bearer"}).status_code == 401
    assert requests.post(rp.url("token_endpoint"), data=b"\xff\xfe", verify=idp.ca,
                         timeout=10).status_code < 500
    assert requests.get(idp.issuer + "/login?tx=nope", verify=idp.ca,
                        timeout=10).status_code == 400


def test_private_key_jwt_and_assertion_replay(idp, browser, demo_card, client_key):
    rp = idp.rp(auth_method="private_key_jwt", jwks=client_key.jwks)
    params = code_from(browser.with_card(demo_card, rp.authorization_url()))
    assertion = client_key.assertion(rp.client_id, rp.url("token_endpoint"))
    data = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    first = rp.exchange(params["code"], auth="none", data_extra=data)
    assert first.status_code == 200, first.text
    replay = rp.post("introspection_endpoint", {"token": first.json()["access_token"], **data},
                     auth="none")
    # RFC 6749 §5.2: 401 is required only when the client used the Authorization header.
    assert replay.status_code in (400, 401) and replay.json()["error"] == "invalid_client"


def test_s256_helper_matches_rfc7636_appendix_b():
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_jwt_helper_refuses_none(idp):
    with pytest.raises(jws.InvalidJWT):
        jws.decode(f"{_b64({'alg': 'none'})}.{_b64({'a': 1})}.", {"keys": []})
