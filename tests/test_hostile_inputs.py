"""Generated hostile input at every protocol endpoint, in process (Flask's test client) on
both databases: whatever a client sends, the answer is never a 5xx nor a stack trace, and
an error is an RFC 6749 / 6750 error body (JSON with ``error``) or a page for people."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from psc_idp import create_app
from psc_idp.oidc.consts import PATHS

from .plugins.idp import base_settings

ISSUER_PATH = "/auth/realms/esante-wallet"
BASE_URL = "https://localhost:5443"

NAMES = ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "client_id",
         "client_secret", "client_assertion", "client_assertion_type", "scope", "token",
         "token_type_hint", "access_token", "response_type", "state", "nonce", "prompt",
         "max_age", "response_mode", "code_challenge", "code_challenge_method", "request",
         "request_uri", "id_token_hint", "post_logout_redirect_uri", "acr_values",
         "login_hint", "ui_locales", "logout_hint"]
NASTY = ["", "\x00", "é", "\ud7ff", "' OR 1=1 --", "a" * 5000, "%00", "..", "null", "[]",
         "{}", "authorization_code", "refresh_token", "S256", "plain", "openid scope_all",
         "e30.e30.", "eyJhbGciOiJub25lIn0.e30.", "-1", "99999999999999999999", "none login",
         "form_post", "fragment", "https://rp.example/cb", "javascript:alert(1)",
         "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]

values = st.one_of(st.sampled_from(NASTY), st.text(max_size=300))
params = st.lists(st.tuples(st.sampled_from(NAMES), values), max_size=8)


@pytest.fixture
def inproc(keys_dir, database_url):
    """The app in this process, with one registered confidential client."""
    app = create_app(base_settings(keys_dir, database_url))
    with app.app_context():
        from psc_idp.clients import create_client
        from psc_idp.extensions import db

        client, secret = create_client(name="hostile", redirect_uris=["https://rp.example/cb"])
        credentials = (client.client_id, secret)
        yield app.test_client(), credentials
        db.session.remove()
        db.engine.dispose()


#: what an HTTP header value can carry (no line breaks)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                             blacklist_characters="\x7f"), max_size=100)


def authorizations(credentials):
    client_id, secret = credentials
    good = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return st.one_of(
        st.none(), st.just(f"Basic {good}"), st.just("Basic /w=="),
        st.just("Basic " + base64.b64encode(b"\xff\xfe:\x00").decode()),
        st.builds(lambda t: f"Bearer {t}", header_text),
        st.builds(lambda t: f"Basic {t}", header_text), header_text)


def check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    if response.status_code >= 400 and response.is_json:
        assert isinstance(response.get_json().get("error"), str)


HOSTILE = settings(max_examples=100, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])


@pytest.mark.parametrize("endpoint", ["token_endpoint", "introspection_endpoint",
                                      "revocation_endpoint", "userinfo_endpoint",
                                      "pushed_authorization_request_endpoint"])
@HOSTILE
@given(data=st.data())
def test_form_endpoints(inproc, endpoint, data):
    client, credentials = inproc
    form = data.draw(params)
    authorization = data.draw(authorizations(credentials))
    headers = {"Authorization": authorization} if authorization else {}
    check(client.post(ISSUER_PATH + PATHS[endpoint], data=MultiDict(form), headers=headers,
                      base_url=BASE_URL))


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "end_session_endpoint",
                                      "userinfo_endpoint"])
@HOSTILE
@given(data=st.data())
def test_query_endpoints(inproc, endpoint, data):
    client, credentials = inproc
    query = data.draw(params)
    if data.draw(st.booleans()):  # a request that passes the client checks
        query += [("client_id", credentials[0]), ("redirect_uri", "https://rp.example/cb"),
                  ("response_type", "code")]
    authorization = data.draw(authorizations(credentials))
    headers = {"Authorization": authorization} if authorization else {}
    check(client.get(ISSUER_PATH + PATHS[endpoint], query_string=MultiDict(query), headers=headers,
                     base_url=BASE_URL))


@HOSTILE
@given(body=st.binary(max_size=2000),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json",
                                     "multipart/form-data; boundary=x", "text/plain", ""]))
def test_raw_bodies(inproc, body, content_type):
    client, _ = inproc
    for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint",
                 "userinfo_endpoint", "authorization_endpoint", "end_session_endpoint",
                 "pushed_authorization_request_endpoint"):
        check(client.post(ISSUER_PATH + PATHS[name], data=body, base_url=BASE_URL,
                          headers={"Content-Type": content_type} if content_type else {}))


@pytest.mark.parametrize("name", ["client_id", "code", "refresh_token", "token",
                                  "access_token", "redirect_uri", "state", "id_token_hint",
                                  "client_secret", "grant_type", "request_uri", "request"])
def test_nul_characters(inproc, name):
    """PostgreSQL refuses NUL in text: a client that sends one gets a client error, not a
    database failure (503)."""
    client, (client_id, secret) = inproc
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"{client_id}:{secret}".encode()).decode()}
    form = {"grant_type": "authorization_code", "code": "c", "client_id": client_id,
            "redirect_uri": "https://rp.example/cb", "token": "t", name: "a\x00b"}
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint",
                     "userinfo_endpoint", "pushed_authorization_request_endpoint"):
        check(client.post(ISSUER_PATH + PATHS[endpoint], data=form, base_url=BASE_URL,
                          headers=auth))
    query = {"response_type": "code", "client_id": client_id, "scope": "openid",
             "redirect_uri": "https://rp.example/cb", name: "a\x00b"}
    for endpoint in ("authorization_endpoint", "end_session_endpoint"):
        check(client.get(ISSUER_PATH + PATHS[endpoint], query_string=query, base_url=BASE_URL))
    nul_client = base64.b64encode(b"a\x00b:secret").decode()
    check(client.post(ISSUER_PATH + PATHS["token_endpoint"], data=form, base_url=BASE_URL,
                      headers={"Authorization": f"Basic {nul_client}"}))


#: the pages professionals see (login, its ways out, the language switch, help, brand assets,
#: the browser phone): any query, any language cookie, never a 5xx
PAGES = ["/login", "/login/abandon", "/login/complete", "/login/ecps/wait",
         "/login/ecps/status", "/login/ecps/done", "/help", "/legal", "/accessibility",
         "/ecps/phone", "/ecps/activate/codes"]
PAGE_NAMES = ["tx", "reason", "lang", "ui_locales", "error", "id_nat", "notice", "request",
              "r", "k", "h"]
page_params = st.lists(st.tuples(st.sampled_from(PAGE_NAMES), values), max_size=6)


@pytest.mark.parametrize("path", PAGES)
@HOSTILE
@given(data=st.data())
def test_pages(inproc, path, data):
    client, _ = inproc
    prefix = "" if path in ("/help", "/legal", "/accessibility") else ISSUER_PATH
    client.set_cookie("psc_idp_lang", data.draw(header_text), domain="localhost")
    response = client.get(prefix + path, query_string=MultiDict(data.draw(page_params)),
                          base_url=BASE_URL, headers={"Accept-Language": data.draw(header_text)})
    if path == "/login/ecps/status" and response.status_code == 404:
        assert response.get_json() == {"status": "unknown"}  # the waiting page's own poll
    else:
        check(response)
    assert response.status_code in (200, 302, 303, 400, 404, 405, 429), response.status_code


@HOSTILE
@given(data=st.data())
def test_page_forms(inproc, data):
    """The e-CPS login and cancel forms with any fields: refused cleanly (CSRF, expired
    login), nothing written."""
    client, _ = inproc
    for path in ("/login/ecps", "/login/ecps/cancel"):
        check(client.post(ISSUER_PATH + path, data=MultiDict(data.draw(page_params)),
                          base_url=BASE_URL))


def test_brand_assets(inproc):
    client, _ = inproc
    for path in ("/static/brand/style.css", "/static/brand/logo",
                 "/static/brand/logo?x=../../etc/passwd", "/static/brand/nothing"):
        response = client.get(path, base_url=BASE_URL)
        check(response)
        response.close()
