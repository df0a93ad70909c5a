"""The e-CPS login in a real headless Chromium: the professional types their idNat, the
page shows the code, the phone (simulator) approves, and the page continues by itself to
the relying party with a code that buys tokens."""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from .ecps_support import activate_with_card, axe_violations, overflows


def test_ecps_login_in_chromium(idp, browser, demo_card, phone_factory, chromium_page):
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    rp = idp.rp()
    landed = {}

    def relying_party(route):
        landed["url"] = route.request.url
        route.fulfill(status=200, content_type="text/html", body="<p id='rp'>RP</p>")

    page = chromium_page
    page.route("https://rp.example/**", relying_party)
    page.goto(rp.authorization_url())
    page.fill("#id_nat", "899700245667")
    page.click("#ecps-submit")
    code = page.text_content("#ecps-code").strip()
    assert len(code) == 2 and code.isdigit()

    approval = threading.Thread(target=phone.ok, args=("approve", "--code", code, "--wait", "10"))
    approval.start()
    page.wait_for_selector("#rp", timeout=20000)  # the page went on by itself
    approval.join()

    params = {k: v[0] for k, v in parse_qs(urlsplit(landed["url"]).query).items()}
    assert params["state"] == rp.state and params["iss"] == idp.issuer
    tokens = rp.exchange(params["code"]).json()
    claims = rp.verify_id_token(tokens["id_token"])
    assert claims["authMode"] == "MOBILE" and claims["preferred_username"] == "899700245667"


@pytest.fixture
def phone_page(chromium, idp):
    """A phone-sized Chromium profile (390×844) in French; the page's CSP is enforced."""
    context = chromium.new_context(ignore_https_errors=True, locale="fr-FR",
                                   viewport={"width": 390, "height": 844})
    page = context.new_page()
    yield page
    context.close()


def _fits(page) -> None:
    assert axe_violations(page) == []
    assert not overflows(page)


@pytest.mark.parametrize("ui_locales, texts", [
    (None, ("Validez dans l'application e-CPS", "Temps restant :", "Annuler la demande",
            "La demande e-CPS a été annulée")),
    ("en", ("Approve in the e-CPS app", "Time left:", "Cancel the request",
            "The e-CPS request was cancelled")),
])
def test_waiting_page_counts_down_then_cancel(idp, browser, demo_card, phone_factory,
                                              phone_page, ui_locales, texts):
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    page, rp = phone_page, idp.rp()
    page.clock.install()
    page.goto(rp.authorization_url(ui_locales=ui_locales))
    page.fill("#id_nat", "899700245667")
    page.click("#ecps-submit")
    title, left, cancel, cancelled = texts
    assert page.text_content("h1").strip() == title
    assert page.get_attribute("html", "lang") == (ui_locales or "fr")
    assert page.text_content(".ecps-countdown").startswith(left)
    first = page.text_content("#ecps-remaining")
    assert re.fullmatch(r"[12]:\d\d", first)
    assert page.text_content("#ecps-announce") == ""  # nothing said at once
    page.clock.run_for(2000)
    second = page.text_content("#ecps-remaining")
    assert second != first and re.fullmatch(r"1:\d\d", second)  # the countdown is live
    assert page.text_content("#ecps-announce") == ""  # not every second
    _fits(page)
    seconds = int(page.get_attribute("#ecps-remaining", "data-seconds"))
    page.clock.run_for((seconds - 90) * 1000 - 1000)  # past the 1:30 mark
    assert page.text_content("#ecps-announce").strip() == f"{left} 1:30"
    assert page.get_attribute("#ecps-announce", "aria-live") == "polite"
    [request] = phone.pending()
    assert request["candidates"] and page.text_content("#ecps-code").strip() in \
        request["candidates"]
    page.click(f"text={cancel}")
    page.wait_for_selector("#login-notice")
    assert page.text_content("#login-notice").startswith(cancelled)
    assert page.is_visible("#ecps-login")  # the professional may start again
    assert phone.pending() == []
    _fits(page)


@pytest.mark.parametrize("ui_locales, reason", [
    (None, "Vous avez choisi un autre code que celui affiché sur cette page."),
    ("en", "You picked another code than the one shown on this page."),
])
def test_wrong_pick_in_chromium(idp, browser, demo_card, phone_factory, phone_page,
                                ui_locales, reason):
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    page, rp = phone_page, idp.rp()
    page.goto(rp.authorization_url(ui_locales=ui_locales))
    page.fill("#id_nat", "899700245667")
    page.click("#ecps-submit")
    code = page.text_content("#ecps-code").strip()
    wrong = next(c for c in phone.pending()[0]["candidates"] if c != code)
    status, output = phone.run("approve", "--code", wrong)
    assert status == 1 and "wrong code picked" in output
    page.wait_for_selector("#failure", timeout=20000)  # the page went on by itself
    assert page.get_attribute("#failure", "data-reason") == "ecps_wrong_code"
    assert page.text_content("#failure strong").strip() == reason
    assert page.is_visible("#retry") and page.is_visible("#back-to-app")
    _fits(page)


def test_typo_in_chromium(idp, phone_page):
    page, rp = phone_page, idp.rp()
    page.goto(rp.authorization_url())
    page.fill("#id_nat", "99700245667")
    page.click("#ecps-submit")
    page.wait_for_selector("#id_nat-error")
    assert page.text_content("#id_nat-error").startswith("Cet identifiant compte 11 chiffres")
    assert page.input_value("#id_nat") == "99700245667"
    assert page.get_attribute("#id_nat", "aria-invalid") == "true"
    _fits(page)


def test_activation_and_device_pages_in_chromium(idp, browser, demo_card, phone_factory,
                                                 phone_page, card_curl):
    activate_with_card(idp, browser, demo_card, phone_factory("kit"))
    page = phone_page
    # the card session of ``browser`` into Chromium (the card login needs the card's TLS)
    origin = "{0.scheme}://{0.netloc}/".format(urlsplit(idp.issuer))
    cookies = [{"name": c.name, "value": c.value, "url": origin}
               for c in browser.session.cookies]
    page.context.add_cookies(cookies)
    for path in ("/ecps/activate", "/ecps/devices", "/ecps/devices?lang=en",
                 "/ecps/activate/codes?lang=fr"):
        page.goto(idp.issuer + path)
        assert page.locator("h1").count() == 1
        if "devices" in path:
            assert page.locator("#devices tbody tr[data-status=active]").count() == 1
        _fits(page)
    page.goto(idp.issuer + "/ecps/activate")
    box = page.locator("#ecps-qr svg").bounding_box()
    assert box["width"] >= 200 and box["width"] == box["height"]
