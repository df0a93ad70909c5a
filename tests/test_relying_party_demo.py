"""The demo relying party in a real headless Chromium: login from the demo app (e-CPS,
approved by the simulator), the identity and activities it shows with their labels, the
activity choice, the developer panel (signatures checked), refresh, and logout."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from psc_idp.clients import create_client
from relying_party_demo import create_app as create_demo

from .ecps_support import activate_with_card
from .plugins.idp import free_port


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


def test_demo_shows_the_professional(idp, browser, demo_card, phone_factory, chromium_page,
                                     demo_rp):
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    page = chromium_page
    page.goto(demo_rp)
    page.click("#login")
    ecps_login(page, phone, "899700245667")
    page.wait_for_selector("#name", timeout=20000)

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
    page.click("#refresh")
    assert page.text_content("#refreshed").strip() == "refresh: OK"

    page.goto(demo_rp + "/?lang=en")
    assert page.text_content("#logout").strip() == "Sign out"
    page.click("#logout")
    page.wait_for_selector("#login")
    assert page.url.startswith(demo_rp + "/")
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
