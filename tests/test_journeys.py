"""Each journey of a professional, walked in a real headless Chromium in French and in
English, on a desktop and on a 390×844 phone screen: every page is screenshotted (test
artefacts: ``var/test-artefacts/journeys``, or ``$PSC_IDP_TEST_ARTEFACTS``), audited with
axe-core (no serious or critical violation) and must not scroll sideways.

axe-core is evaluated through the DevTools protocol: the pages' Content Security Policy
stays in force."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from psc_idp.sandbox.pki import card_subject, new_root, pem

from .a11y import Auditor
from .ecps_support import Phone, activate_with_card
from .plugins.idp import running_idp
from .support import Browser

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = Path(os.environ.get("PSC_IDP_TEST_ARTEFACTS", ROOT / "var/test-artefacts")) / "journeys"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
LOCALES = {"fr": "fr-FR", "en": "en-GB"}
KIT = "899700245667"

@pytest.fixture
def journey_idp(keys_dir, cards, smtp_server, tmp_path, request):
    """A live psc-idp (SQLite) whose console admits KIT, and a card certificate for KIT
    whose key is a file (Chromium presents it: it cannot reach a SoftHSM token here)."""
    path = tmp_path / "journeys.sqlite3"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    with running_idp(keys_dir, f"sqlite:///{path}", cards, smtp_server, tmp_path,
                     admins=[KIT], ecps_max_failures=100) as live:
        yield live


def browser_card(cards, tmp_path: Path, *, trusted: bool) -> tuple[Path, Path]:
    """A card certificate and key in files for Chromium: KIT's, issued by the test cards'
    CA, or an untrusted one."""
    key = ec.generate_private_key(ec.SECP256R1())
    authority = cards.pki.authority() if trusted else new_root("FAUSSE AC")
    subject = card_subject(KIT, "KIT", "DOC0024566", "Docteur")
    certificate = authority.issue(subject, key.public_key(),
                                  not_before=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    name = "trusted" if trusted else "untrusted"
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(pem(certificate))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def new_context(chromium, live, language: str, viewport: str, certificate=None):
    options = {"ignore_https_errors": True, "locale": LOCALES[language],
               "viewport": VIEWPORTS[viewport]}
    if certificate:
        options["client_certificates"] = [{"origin": live.card_url,
                                           "certPath": str(certificate[0]),
                                           "keyPath": str(certificate[1])}]
    if viewport == "phone":
        options.update(is_mobile=True, has_touch=True, device_scale_factor=2)
    context = chromium.new_context(**options)
    context.route("https://rp.example/**", lambda route: route.fulfill(
        status=200, content_type="text/html",
        body="<!doctype html><html lang='en'><title>RP</title><main><p id='rp'>RP</p></main>"))
    return context


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("language", LOCALES)
def test_professional_journeys(journey_idp, cards, demo_card, card_curl, chromium, tmp_path,
                               language, viewport):
    live = journey_idp
    auditor = Auditor(ARTEFACTS / f"{language}-{viewport}")
    phone = Phone(tmp_path / "phone", live.ca)
    activate_with_card(live, Browser(live.ca, card_curl), demo_card, phone)
    rp = live.rp()

    # the login page, a mistyped idNat, the e-CPS wait, a refusal on the phone
    context = new_context(chromium, live, language, viewport)
    page = context.new_page()
    page.goto(rp.authorization_url(ui_locales=language))
    auditor.check(page, "01-login", language)
    page.fill("#id_nat", "12345")
    page.click("#ecps-submit")
    page.wait_for_selector("#id_nat-error")
    auditor.check(page, "02-login-idnat-refused", language)
    page.fill("#id_nat", KIT)
    page.click("#ecps-submit")
    page.wait_for_selector("#ecps-code")
    auditor.check(page, "03-ecps-wait", language)
    denial = threading.Thread(target=phone.ok, args=("deny", "--wait", "10"))
    denial.start()
    page.wait_for_selector("#failure", timeout=20000)
    denial.join()
    auditor.check(page, "04-ecps-denied", language)
    for name in ("help", "legal", "accessibility"):
        page.goto(f"{live.issuer}/{name}?lang={language}")
        auditor.check(page, f"05-{name}", language)
    context.close()

    # a card no trusted authority issued: the card origin's refusal
    context = new_context(chromium, live, language, viewport,
                          browser_card(cards, tmp_path, trusted=False))
    page = context.new_page()
    page.goto(rp.authorization_url(ui_locales=language))
    page.click("#card-login")
    page.wait_for_selector("#failure")
    assert page.get_attribute("#failure", "data-reason") == "untrusted"
    auditor.check(page, "06-card-untrusted", language)
    page.click("#back-to-app")
    page.wait_for_selector("#rp")
    context.close()

    # a card login, the console, then signing out
    context = new_context(chromium, live, language, viewport,
                          browser_card(cards, tmp_path, trusted=True))
    page = context.new_page()
    page.goto(f"{live.issuer.split('/auth/')[0]}/admin/console?lang={language}")
    page.wait_for_load_state("load")
    auditor.check(page, "07-console-home", language)
    for path in ("clients", "practitioners", "audit"):
        page.goto(f"{live.issuer.split('/auth/')[0]}/admin/console/{path}")
        auditor.check(page, f"08-console-{path}", language)
    # the professional's own e-CPS pages (the card session opens them), the browser phone
    for name, path in (("11-ecps-activate", "/ecps/activate"), ("12-ecps-devices", "/ecps/devices"),
                       ("13-ecps-codes", "/ecps/activate/codes"), ("14-phone", "/ecps/phone")):
        page.goto(f"{live.issuer}{path}")
        auditor.check(page, name, language)
    page.goto(f"{live.issuer}/protocol/openid-connect/logout")
    auditor.check(page, "09-logout-confirm", language)
    page.click("#confirm-logout")
    page.wait_for_selector("#logged-out")
    auditor.check(page, "10-logged-out", language)
    context.close()

    assert auditor.pages >= 18
    assert auditor.problems == []
