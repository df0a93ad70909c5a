"""The demo relying party in a real headless Chromium on a phone-sized screen: login from
the demo app (e-CPS, approved by the simulator), the identity and activities it shows with
their labels, the activity choice, the developer panel (signatures checked, times as dates
with their raw numbers), refresh, and logout; nothing wider than the screen, no code or
state left in the address bar. Its pages' content in process (Flask test client)."""

from __future__ import annotations

import re
import threading

import pytest
from werkzeug.serving import make_server

from psc_idp.clients import create_client
from relying_party_demo import create_app as create_demo

from .a11y import axe_violations
from .ecps_support import activate_with_card
from .plugins.idp import free_port

PHONE = {"width": 390, "height": 844}
FRENCH_DATE = r"\d{1,2}(er)? [a-zéû]+ \d{4} à \d{2}:\d{2}:\d{2} \(heure de Paris\)"


@pytest.fixture
def demo_rp(idp, request):
    timeout = getattr(request, "param", 900)
    port = free_port()
    base = f"http://localhost:{port}"
    with idp.app.app_context():
        client, secret = create_client(
            name="Démo", redirect_uris=[base + "/callback"],
            post_logout_redirect_uris=[base + "/"])
        client_id = client.client_id
    app = create_demo({"issuer": idp.issuer, "client_id": client_id, "client_secret": secret,
                       "ca_file": idp.ca, "session_timeout": timeout})
    server = make_server("localhost", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base
    server.shutdown()
    server.server_close()


def ecps_login(page, phone, id_nat: str) -> None:
    page.fill("#id_nat", id_nat)
    page.click("#ecps-submit")
    code = page.text_content("#ecps-code").strip()
    phone.ok("approve", "--code", code, "--wait", "10")


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def too_wide(page) -> list[str]:
    """The elements that stick out of the screen (the failure message)."""
    return page.evaluate("""[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth ||
                     (e.scrollWidth > e.clientWidth &&
                      getComputedStyle(e).overflowX === 'visible'))
        .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' +
                  Math.round(e.getBoundingClientRect().right))""")


def test_demo_shows_the_professional(idp, browser, demo_card, phone_factory, chromium_page,
                                     demo_rp):
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    page = chromium_page
    page.set_viewport_size(PHONE)
    page.goto(demo_rp)
    page.click("#login")
    ecps_login(page, phone, "899700245667")
    page.wait_for_selector("#name", timeout=20000)
    assert page.url == demo_rp + "/"  # the callback's code and state are gone
    assert fits_the_screen(page), too_wide(page)
    assert axe_violations(page) == []
    assert re.fullmatch(FRENCH_DATE, page.text_content("#auth-time").strip())

    assert page.text_content("#name").strip() == "KIT DOC0024566"
    assert page.text_content("#id-nat").strip() == "899700245667"
    assert page.text_content("#rpps").strip() == "99700245667"
    assert "MOBILE" in page.text_content("#auth") and "eidas1" in page.text_content("#auth")
    profession = page.text_content(".profession")
    assert "Médecin (10)" in profession and "Civil (C)" in profession
    assert "SM26" in page.text_content(".savoir-faire")
    structures = page.locator(".structure").all_text_contents()
    assert structures == ["CABINET M DOC0024566"]
    assert "Libéral" in page.text_content(".activity")

    page.click("#use-activity")
    assert "CABINET M DOC0024566" in page.text_content("#chosen")

    page.click("#developer")
    assert page.text_content("#id_token-verified").strip() == "signature vérifiée"
    assert page.text_content("#access_token-verified").strip() == "signature vérifiée"
    assert '"SubjectRefPro"' in page.text_content("#userinfo-json")
    assert fits_the_screen(page), too_wide(page)
    assert axe_violations(page) == []
    for claim in ("exp", "iat", "auth_time"):
        assert re.fullmatch(FRENCH_DATE, page.text_content(f"#id_token-{claim}").strip())
        assert re.fullmatch(r"\d{10}", page.text_content(f"#id_token-{claim}-raw").strip())
    page.click("#refresh")
    assert page.text_content("#refreshed").strip() == "refresh: OK"

    page.goto(demo_rp + "/?lang=en")
    assert page.text_content("#logout").strip() == "Sign out"
    page.click("#logout")
    page.wait_for_selector("#login")
    assert page.text_content("#signed-out").strip() == "You are signed out."
    assert page.url == demo_rp + "/"  # the logout's state is gone too
    assert fits_the_screen(page)
    assert axe_violations(page) == []
    # the IdP session is over too: logging in again asks who you are
    page.click("#login")
    page.wait_for_selector("#id_nat")


@pytest.mark.parametrize("demo_rp", [-1], indirect=True)  # every app session has timed out
def test_app_timeout_keeps_the_idp_session(idp, browser, demo_card, demo_rp):
    """PSC's rule: an app session timeout ends the app session only."""
    to_idp = browser.get(demo_rp + "/login")
    back = browser.with_card(demo_card, to_idp.headers["Location"])
    assert back.headers["Location"].startswith(demo_rp + "/callback?")
    assert browser.get(back.headers["Location"]).status_code == 302
    home = browser.get(demo_rp + "/")
    assert 'id="timed-out"' in home.text and 'id="login"' in home.text
    # logging in again is silent: the IdP session is still there
    again = browser.get(browser.get(demo_rp + "/login").headers["Location"])
    assert again.status_code == 302
    assert again.headers["Location"].startswith(demo_rp + "/callback?code=")


# --- the pages' content, in process -------------------------------------------------------

AUTH_TIME = 1796000000  # 30 November 2026, 01:53:20 in Paris


@pytest.fixture
def demo_http():
    app = create_demo({"issuer": "https://localhost:1/auth/realms/esante-wallet",
                       "client_id": "demo", "client_secret": "s"})
    return app.test_client()


def logged_in(http) -> None:
    with http.session_transaction() as session:
        session["tokens"] = {"access_token": "a"}
        session["id_claims"] = {"acr": "eidas1", "amr": ["hwk", "pin", "mfa"],
                                "auth_time": AUTH_TIME}
        session["userinfo"] = {"given_name": "KIT", "family_name": "DOC0024566",
                               "preferred_username": "899700245667", "authMode": "MOBILE",
                               "SubjectRefPro": {"exercices": []}}


def test_times_read_as_dates_in_each_language(demo_http):
    logged_in(demo_http)
    french = demo_http.get("/").get_data(as_text=True)
    assert ('connecté le <span id="auth-time">30 novembre 2026 à 01:53:20 (heure de Paris)'
            '</span>') in french
    english = demo_http.get("/?lang=en").get_data(as_text=True)
    assert ('signed in on <span id="auth-time">30 November 2026, 01:53:20 (Paris time)'
            '</span>') in english


def test_readable_time():
    from relying_party_demo.i18n import readable_time

    assert readable_time(1798761600, "fr") == "1er janvier 2027 à 01:00:00 (heure de Paris)"
    assert readable_time(1798761600, "en") == "1 January 2027, 01:00:00 (Paris time)"
    assert readable_time("soon", "fr") == "soon" and readable_time(10**20, "en") == str(10**20)


def test_signed_out_message(demo_http):
    logged_in(demo_http)
    ended = demo_http.post("/logout")  # no ID token: nothing to end at the IdP
    assert ended.status_code == 302 and ended.headers["Location"] == "/"
    assert "Vous êtes déconnecté(e)." in demo_http.get("/").get_data(as_text=True)
    assert "déconnecté" not in demo_http.get("/").get_data(as_text=True)  # said once


def test_addresses_are_cleaned(demo_http):
    failed = demo_http.get("/callback?error=access_denied&state=s&error_description=no")
    assert failed.status_code == 302 and failed.headers["Location"] == "/login-error"
    page = demo_http.get("/login-error")
    assert page.status_code == 400 and "access_denied" in page.get_data(as_text=True)
    # a state the app did not send: a clean home page, no "signed out"
    stray = demo_http.get("/?state=not-ours")
    assert stray.status_code == 302 and stray.headers["Location"] == "/"
    assert 'id="signed-out"' not in demo_http.get("/").get_data(as_text=True)
