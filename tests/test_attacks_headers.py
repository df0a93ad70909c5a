"""Security headers on every answer of a running psc-idp (real TLS): a strict Content
Security Policy without inline script, no framing, no MIME sniffing, no Referer, HSTS,
``no-store`` on everything that carries a secret or personal data, and a ``__Host-``
session cookie."""

from __future__ import annotations

from urllib.parse import urljoin

import requests

from .support import code_from


def check_common(response: requests.Response) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_and_answers_carry_the_security_headers(idp, browser, demo_card):
    rp = idp.rp()
    login = browser.get(rp.authorization_url())
    page = browser.get(urljoin(login.url, login.headers["Location"]))
    assert page.status_code == 200 and "<form" in page.text
    for response in (login, page):
        check_common(response)
        assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]

    tokens_response = rp.exchange(code_from(browser.with_card(
        demo_card, rp.authorization_url()))["code"])
    tokens = tokens_response.json()
    userinfo = rp.userinfo(tokens["access_token"])
    introspection = rp.post("introspection_endpoint", {"token": tokens["access_token"]})
    error = requests.get(idp.issuer + "/login?tx=nope", verify=idp.ca, timeout=10)
    for response in (tokens_response, userinfo, introspection, error):
        check_common(response)
        assert "no-store" in response.headers["Cache-Control"]
    jwks = requests.get(rp.url("jwks_uri"), verify=idp.ca, timeout=10)
    discovery = requests.get(idp.issuer + "/.well-known/openid-configuration",
                             verify=idp.ca, timeout=10)
    for response in (jwks, discovery):  # public, cacheable
        check_common(response)
        assert "max-age=" in response.headers["Cache-Control"]


def test_session_cookie_is_host_only_and_secure(idp, browser, demo_card):
    rp = idp.rp()
    response = browser.with_card(demo_card, rp.authorization_url())
    assert response.status_code == 302
    cookies = [c for c in browser.session.cookies if c.name.startswith("__Host-")]
    assert cookies, [c.name for c in browser.session.cookies]
    for cookie in cookies:
        assert cookie.secure and cookie.path == "/" and not cookie.domain_specified
        assert cookie.has_nonstandard_attr("HttpOnly")
