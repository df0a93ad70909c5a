"""The ops console: card login through psc-idp itself (curl with the SoftHSM card, real TLS),
then the pages in a real headless Chromium carrying that session; non-admins are refused."""

from __future__ import annotations

import re

import pytest

from .ecps_support import activate_with_card
from .plugins.idp import running_idp

KIT, JEAN = "899700245667", "899700218896"


def console_url(idp, path="/") -> str:
    return idp.issuer.split("/auth/")[0] + "/admin/console" + path


def card_login(idp, browser, card, path="/"):
    """Open a console page, log in with the card on the card origin, come back."""
    first = browser.get(console_url(idp, path))
    if first.status_code != 302:
        return first  # this browser already has a card session (single sign-on)
    assert first.status_code == 302 and "/card/login?tx=" in first.headers["Location"]
    status, headers, body = browser.card_curl(card, first.headers["Location"])
    assert status == 302, body
    back = browser.get(headers["location"])
    assert back.status_code == 302 and back.headers["Location"].endswith("/admin/console/")
    return browser.get(console_url(idp, "/"))


def chromium_with(chromium_page, browser, idp):
    """Hand the card-authenticated session cookie to Chromium."""
    origin = idp.issuer.split("/auth/")[0]  # a host-only cookie, as __Host- requires
    cookies = [{"name": c.name, "value": c.value, "url": origin, "secure": True,
                "httpOnly": True} for c in browser.session.cookies
               if c.name == "__Host-psc_idp"]
    chromium_page.context.add_cookies(cookies)
    return chromium_page


@pytest.fixture
def idp(keys_dir, database_url, cards, smtp_server, tmp_path):
    """The live server, configured with KIT as the only console administrator."""
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     admins=[KIT]) as live:
        yield live


def test_console_for_an_admin(idp, browser, demo_card, phone_factory, chromium_page):
    rp = idp.rp()
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    assert card_login(idp, browser, demo_card).status_code == 200
    page = chromium_with(chromium_page, browser, idp)

    page.goto(console_url(idp, "/"))
    assert page.locator("#keys tbody tr").count() >= 1
    assert "cards-ca.crl" in page.text_content("#crls")

    page.goto(console_url(idp, "/clients"))
    row = page.locator(f'tr[data-client="{rp.client_id}"]')
    row.locator("button").click()
    assert page.locator(f'tr[data-client="{rp.client_id}"]').get_attribute(
        "data-enabled") == "no"

    page.goto(console_url(idp, "/practitioners"))
    page.fill("#q", "DOC00")
    page.click("#search")
    page.click(f"text={KIT}")
    assert KIT in page.text_content("#practitioner")
    fingerprints = page.locator("#cards code").all_text_contents()
    assert fingerprints and all(re.fullmatch(r"[0-9a-f]{64}", f) for f in fingerprints)
    page.locator('#devices tr[data-status="active"] button').click()
    assert page.locator('#devices tr[data-status="revoked"]').count() == 1
    code, output = phone.run("devices")
    assert code != 0 and "unknown_device" in output  # revoked at once

    page.goto(console_url(idp, "/audit"))
    page.fill("#event", "client.disabled")
    page.click("#filter")
    events = page.locator("tr.event")
    assert events.count() == 1 and f"console:{KIT}" in events.first.text_content()


def test_console_refuses_non_admins(idp, browser, cards, chromium_page):
    refused = card_login(idp, browser, cards["CPS-899700218896"])
    assert refused.status_code == 403 and 'data-reason="not_admin"' in refused.text
    page = chromium_with(chromium_page, browser, idp)
    response = page.goto(console_url(idp, "/audit"))
    assert response.status == 403
    assert page.get_attribute("#failure", "data-reason") == "not_admin"


def test_console_requires_a_card_login(idp, browser):
    response = browser.get(console_url(idp, "/clients"))
    assert response.status_code == 302 and "/card/login?tx=" in response.headers["Location"]
