"""The sandbox's e-CPS phone in the browser (``/ecps/phone``), in real headless Chromium: it
activates (QR code or SMS + e-mail codes) with a non-extractable WebCrypto key kept in
IndexedDB, shows the pending login of another browser with its three codes, and approves it
(PIN) or denies it over the phone app's API. On a phone, the waiting page opens the e-CPS app
at the request (app link), which the browser phone and ``psc-ecps approve --link`` follow.
The sandbox only: a production IdP has no such page."""

from __future__ import annotations

import html
import re
import shutil
import threading
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from psc_idp import create_app
from psc_idp.ecps import browser_phone, simulator

from .a11y import axe_violations, overflows
from .ecps_support import PIN, activate_with_card, codes_sent, request_codes
from .plugins.idp import base_settings

KIT = "899700245667"
JEAN = "899700218896"
PIXEL = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.0.0 Mobile Safari/537.36")
#: what the phone keeps in IndexedDB: the CryptoKey object itself, never its bytes
STORED_KEY = """async () => {
  const db = await new Promise((ok, ko) => {
    const open = indexedDB.open("psc-ecps-phone", 1);
    open.onsuccess = () => ok(open.result); open.onerror = () => ko(open.error);
  });
  const state = await new Promise((ok) => {
    const get = db.transaction("devices").objectStore("devices").getAll();
    get.onsuccess = () => ok(get.result[0]);
  });
  let exported = "refused";
  try { await crypto.subtle.exportKey("jwk", state.key); exported = "exported"; } catch (e) {}
  return {isKey: state.key instanceof CryptoKey, type: state.key.type,
          extractable: state.key.extractable, curve: state.key.algorithm.namedCurve,
          exported: exported, fields: Object.keys(state).sort()};
}"""


def qr_text(idp, browser, card) -> str:
    """The activation page's QR code, text form, after a card login."""
    response = browser.get(idp.issuer + "/ecps/activate")
    status, headers, body = browser.card_curl(card, response.headers["Location"])
    assert status == 302, body
    back = browser.get(headers["location"])
    page = browser.get(urljoin(back.url, back.headers["Location"]))
    return html.unescape(re.search(r'id="ecps-qr-text">([^<]+)<', page.text).group(1))


def phone_page(chromium, idp, **context):
    """The browser phone in its own browser profile."""
    options = {"ignore_https_errors": True, "locale": "fr-FR", **context}
    page = chromium.new_context(**options).new_page()
    page.goto(idp.issuer + "/ecps/phone")
    page.wait_for_selector("#activation:not([hidden])")
    return page


def activate(page, pin: str = PIN, **fields) -> None:
    for selector, value in fields.items():
        page.fill(f"#{selector}", value)
    page.fill("#new-pin", pin)
    page.fill("#new-pin-again", pin)
    page.click("#activate-submit")
    page.wait_for_selector("#device:not([hidden])", timeout=15000)


def start_login(page, rp, id_nat: str) -> str:
    """The professional types their idNat on the login page; returns the code it shows."""
    page.route("https://rp.example/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<p id='rp'>RP</p>"))
    page.goto(rp.authorization_url())
    page.fill("#id_nat", id_nat)
    page.click("#ecps-submit")
    return page.text_content("#ecps-code").strip()


def landed(page, rp, idp) -> dict:
    page.wait_for_selector("#rp", timeout=20000)  # the login page went on by itself
    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params["state"] == rp.state and params["iss"] == idp.issuer
    return rp.verify_id_token(rp.exchange(params["code"]).json()["id_token"])


def test_browser_phone_approves_a_login_in_another_browser(idp, browser, demo_card, chromium,
                                                           chromium_page):
    phone = phone_page(chromium, idp)
    activate(phone, **{"qr-text": qr_text(idp, browser, demo_card)})
    assert phone.text_content("#device-info") == f"Ce téléphone est activé pour {KIT}."
    key = phone.evaluate(STORED_KEY)
    assert key == {"isKey": True, "type": "private", "extractable": False, "curve": "P-256",
                   "exported": "refused",
                   "fields": ["device_id", "id_nat", "issuer", "key", "label", "pin",
                              "pin_errors"]}

    rp = idp.rp()
    code = start_login(chromium_page, rp, KIT)
    assert chromium_page.locator("#ecps-app-link").count() == 0  # not on a desktop
    request = phone.wait_for_selector(".phone-request", timeout=30000)
    phone.wait_for_function("() => document.getElementById('phone-status').textContent"
                            ".startsWith('Nouvelle demande de connexion de rp ')")
    assert request.query_selector(".request-app").text_content().startswith("rp ")
    choices = [c.text_content().strip() for c in request.query_selector_all(".code-choice")]
    assert code in choices and len(choices) == 3

    phone.get_by_label(code, exact=True).check()
    phone.fill(".phone-request .pin", "0000")
    phone.click(".phone-request .approve")
    phone.wait_for_selector(".result:text('Code PIN erroné : encore 4 essai(s)')")
    phone.fill(".phone-request .pin", PIN)
    phone.click(".phone-request .approve")
    phone.wait_for_selector(".result:text-is('Validé : la page de connexion continue "
                            "d\\'elle-même.')")

    claims = landed(chromium_page, rp, idp)
    assert claims["authMode"] == "MOBILE" and claims["preferred_username"] == KIT
    phone.context.close()


def test_browser_phone_activated_by_codes_denies(idp, browser, chromium, chromium_page,
                                                 smtp_server, tmp_path):
    """Activation with the SMS and e-mail codes, then "it's not me": the login page says the
    sign-in was refused. Audited with axe-core on a 390×844 screen."""
    smtp_server.messages.clear()
    assert request_codes(browser, idp.issuer, JEAN).status_code == 200
    [(sms_code, email_code)] = codes_sent(tmp_path / "sms-outbox", smtp_server,
                                          "+33 600000001", "jean.medecin0021889@example.test")
    phone = phone_page(chromium, idp, viewport={"width": 390, "height": 844})
    audit(phone)
    activate(phone, **{"id-nat": JEAN, "sms-code": sms_code, "email-code": email_code})

    start_login(chromium_page, idp.rp(), JEAN)
    phone.wait_for_selector(".phone-request", timeout=30000)
    audit(phone)
    phone.click(".phone-request .deny")
    phone.wait_for_selector(".result:text-is('Refusé : la connexion n\\'aboutira pas.')")
    chromium_page.wait_for_selector("#failure[data-reason='ecps_denied']", timeout=20000)
    phone.context.close()


def audit(page) -> None:
    assert axe_violations(page) == []
    assert not overflows(page)


def test_activation_mistakes_are_explained(idp, chromium):
    phone = phone_page(chromium, idp)
    phone.fill("#new-pin", "12")
    phone.fill("#new-pin-again", "12")
    phone.click("#activate-submit")
    assert phone.text_content("#activate-error") == "Le code PIN doit compter au moins 4 chiffres."
    phone.fill("#qr-text", "psc-ecps:activate?{\"issuer\":\"https://elsewhere.example\","
                           "\"secret\":\"x\"}")
    activate_fails(phone, "Ce QR code est destiné à un autre serveur.")
    phone.fill("#qr-text", "psc-ecps:activate?{\"issuer\":\"" + idp.issuer + "\","
                           "\"secret\":\"forged\"}")
    activate_fails(phone, "Ces codes ou ce QR code ne sont pas valides, ou ne le sont plus.")
    phone.context.close()


def activate_fails(page, message: str) -> None:
    page.fill("#new-pin", PIN)
    page.fill("#new-pin-again", PIN)
    page.click("#activate-submit")
    page.wait_for_selector(f"#activate-error:text-is('{message}')")
    assert page.is_visible("#activation")


# --- login on the phone itself ------------------------------------------------------------

def test_on_a_phone_the_waiting_page_opens_the_browser_phone(idp, browser, demo_card,
                                                            chromium):
    """One phone: the professional signs in in its browser, follows "Open the e-CPS app on
    this phone" to the (browser) app at that request, approves, and the login completes."""
    device = {"user_agent": PIXEL, "viewport": {"width": 390, "height": 844},
              "is_mobile": True, "has_touch": True}
    phone = phone_page(chromium, idp, **device)
    activate(phone, **{"qr-text": qr_text(idp, browser, demo_card)})
    login = phone.context.new_page()
    rp = idp.rp()
    code = start_login(login, rp, KIT)
    link = login.get_attribute("#ecps-app-link", "href")
    rid = parse_qs(urlsplit(link).query)["request"][0]
    assert link.startswith(idp.issuer + "/ecps/phone?request=")

    with login.context.expect_page() as opened:
        login.click("#ecps-app-link")
    app = opened.value
    app.wait_for_selector(f".phone-request.wanted[data-request='{rid}']", timeout=30000)
    app.get_by_label(code, exact=True).check()
    app.fill(".wanted .pin", PIN)
    app.click(".wanted .approve")
    app.wait_for_selector(".wanted.decided")
    login.bring_to_front()  # back to the browser's tab, as the link's page says
    claims = landed(login, rp, idp)
    assert claims["authMode"] == "MOBILE"
    phone.context.close()


def test_simulator_follows_the_app_link(idp, browser, demo_card, phone_factory, chromium):
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    page = chromium.new_context(ignore_https_errors=True, locale="fr-FR", user_agent=PIXEL,
                                viewport={"width": 390, "height": 844}).new_page()
    rp = idp.rp()
    code = start_login(page, rp, KIT)
    assert page.text_content("#ecps-app-panel h2") == "Vous vous connectez sur ce téléphone ?"
    link = page.get_attribute("#ecps-app-link", "href")

    elsewhere = link.replace(urlsplit(link).netloc, "idp.example")
    exit_code, output = phone.run("approve", "--link", elsewhere, "--code", code)
    assert exit_code != 0 and "this link is for https://idp.example" in output
    exit_code, output = phone.run("approve", "--link", "https://x.example/?request=1",
                                  "--code", code)
    assert exit_code != 0 and "not an e-CPS app link" in output

    approval = threading.Thread(target=phone.ok,
                                args=("approve", "--link", link, "--code", code))
    approval.start()
    claims = landed(page, rp, idp)
    approval.join()
    assert claims["authMode"] == "MOBILE"
    page.context.close()


def test_app_link_forms():
    """The app's own scheme (production) and the browser phone's page (sandbox) name the
    same request for ``psc-ecps``."""
    state = {"issuer": "https://idp.example/auth/realms/esante-wallet"}
    scheme = ("psc-ecps://approve?issuer=https%3A%2F%2Fidp.example%2Fauth%2Frealms%2F"
              "esante-wallet&request=r1")
    assert simulator.linked_request(state, scheme) == "r1"
    assert simulator.linked_request(
        state, "https://idp.example/auth/realms/esante-wallet/ecps/phone?request=r2") == "r2"
    with pytest.raises(simulator.AppError, match="names no login request"):
        simulator.linked_request(state, "psc-ecps://approve?issuer=" + state["issuer"])


# --- never in production --------------------------------------------------------------------

def test_no_phone_page_in_production(keys_dir, cards, sqlite_template, tmp_path):
    shutil.copy(sqlite_template, tmp_path / "prod.sqlite3")
    pki = cards.pki
    app = create_app(base_settings(
        keys_dir, f"sqlite:///{tmp_path}/prod.sqlite3", mode="production",
        issuer="https://idp.example/auth/realms/esante-wallet",
        card_login_url="https://card.idp.example", card_trust_anchors=[str(pki.trust_anchor)],
        card_intermediates=[str(pki.issuing_ca)], card_crls=[str(pki.crl)],
        sms_gateway="http", sms_http_url="https://sms.example/send", smtp_host="smtp.example"))
    assert not [r for r in app.url_map.iter_rules() if r.endpoint.startswith("phone.")]
    app.register_blueprint(browser_phone.bp, url_prefix="/wired-by-mistake")
    client = app.test_client()
    for path in ("/auth/realms/esante-wallet/ecps/phone", "/wired-by-mistake/ecps/phone"):
        assert client.get(path, headers={"Accept": "text/html"}).status_code == 404
    with app.test_request_context():
        assert browser_phone.app_link("r1") == (
            "psc-ecps://approve?issuer=https%3A%2F%2Fidp.example%2Fauth%2Frealms%2F"
            "esante-wallet&request=r1")
    with app.app_context():
        from psc_idp.extensions import db

        db.engine.dispose()
