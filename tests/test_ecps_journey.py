"""The professional's e-CPS journey in the browser, over real HTTPS: a typo in the idNat
is explained at once (no request, no counter, no wait), the waiting page's Cancel ends the
request on the phone too, a wrong pick is told apart from a refusal, the activation QR code
keeps its quiet zone, the device list speaks the page's language."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from psc_idp.directory.identifiers import ID_NAT_PROBLEMS, id_nat_problem
from psc_idp.ecps.models import LoginRequest
from psc_idp.extensions import db

from .ecps_support import activate_with_card, ecps_page, start_ecps_login
from .support import Browser

KIT = "899700245667"


@pytest.fixture
def enrolled(idp, browser, demo_card, phone_factory):
    """KIT's phone, activated with the card (``browser`` keeps the card session)."""
    phone = phone_factory("phone")
    activate_with_card(idp, browser, demo_card, phone)
    return phone


def audit_events(idp, name: str) -> list:
    with idp.app.app_context():
        from psc_idp.audit import AuditEvent

        return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)).all()


def login_requests(idp) -> int:
    with idp.app.app_context():
        return len(db.session.scalars(db.select(LoginRequest)).all())


# --- the idNat's shape ------------------------------------------------------------------------

@pytest.mark.parametrize("typed, problem", [
    (KIT, None), ("0751234567", None), ("02A1234567", None),  # RPPS, ADELI, ADELI Corsica
    ("3123456789/CPAT0001", None), ("512345678901234/CPAT0001", None),  # staff cards
    ("0f3c1a2e-9b7d-4c5e-8a6f-1b2c3d4e5f60", None),  # PSI
    ("99700245667", "rpps_length"),  # the RPPS number without its 8
    ("8997002456670", "rpps_length"), ("899700245668", "check_digit"),
    ("89970024566O", "not_digits"), ("8997 0024 5667", "not_digits"),
    ("８９９７００２４５６６７", "not_digits"),  # full-width digits
    ("075123456", "adeli_length"), ("07512345X7", "not_digits"),
    ("997002456670", "prefix"), ("3/x", "malformed"), ("", "empty"),
    ("3123456789/" + "X" * 30, "malformed"),  # longer than an idNat may be
])
def test_id_nat_problem(typed, problem):
    assert id_nat_problem(typed) == problem
    assert problem is None or problem in ID_NAT_PROBLEMS


def _typo(browser, rp, typed: str, **params) -> tuple:
    posted = start_ecps_login(browser, rp.authorization_url(**params), typed)
    assert posted.status_code == 303
    target = urljoin(posted.url, posted.headers["Location"])
    assert urlsplit(target).path.endswith("/login"), target  # the login page, at once
    page = browser.get(target)
    assert page.status_code == 200
    error = re.search(r'<p id="id_nat-error" role="alert">([^<]+)</p>', page.text)
    return parse_qs(urlsplit(target).query)["error"][0], html.unescape(error.group(1)), page


def test_a_typo_is_explained_at_once_without_a_request(idp, card_curl):
    rp, browser = idp.rp(), Browser(idp.ca, card_curl)
    error, message, page = _typo(browser, rp, "99700245667")
    assert error == "rpps_length"
    assert message == ("Cet identifiant compte 11 chiffres ; un idNat RPPS en compte 12 : "
                       "8 suivi de votre numéro RPPS à 11 chiffres.")
    assert 'aria-invalid="true"' in page.text and 'value="99700245667"' in page.text
    error, message, _ = _typo(browser, rp, "899700245668")
    assert (error, message) == ("check_digit", "La clé de contrôle ne correspond pas : "
                                "vérifiez qu'il n'y a pas de faute de frappe.")
    error, message, _ = _typo(browser, rp, "899700245668", ui_locales="en")
    assert message == "The check digit does not match: check for a typo."
    error, message, _ = _typo(browser, rp, "89970024566a", ui_locales="en")
    assert error == "not_digits" and message.startswith("An idNat has digits only")
    # more typos than the network's budget for an idNat: none was counted
    settings = idp.app.extensions["psc_idp"].settings
    for _ in range(settings.ecps_rate_per_id_nat + 1):
        assert _typo(browser, rp, "899700245668")[0] == "check_digit"
    assert login_requests(idp) == 0 and audit_events(idp, "ecps.login.requested") == []
    assert audit_events(idp, "ecps.rate_limited") == []
    page = ecps_page(browser, rp.authorization_url(), KIT)  # corrected: the request starts
    assert page.status() == "pending" and login_requests(idp) == 1


def test_a_forged_error_code_shows_nothing(idp, card_curl):
    rp, browser = idp.rp(), Browser(idp.ca, card_curl)
    login = browser.get(rp.authorization_url())
    page = browser.get(urljoin(login.url, login.headers["Location"]) + "&error=<b>x"
                       + "&notice=nope&id_nat=" + "9" * 50)
    assert page.status_code == 200 and 'id="id_nat-error"' not in page.text
    assert 'id="login-notice"' not in page.text and "<b>x" not in page.text


# --- the waiting page and its Cancel ----------------------------------------------------------

def _cancel_form(page) -> tuple[str, dict]:
    form = re.search(r'<form method="post" action="([^"]+)" id="ecps-cancel">(.*?)</form>',
                     page.response.text, re.S)
    fields = dict(re.findall(r'name="(csrf_token)" value="([^"]+)"', form.group(2)))
    return urljoin(page.response.url, html.unescape(form.group(1))), fields


def test_waiting_page_shows_code_countdown_and_ways_out(idp, enrolled, card_curl):
    rp, browser = idp.rp(), Browser(idp.ca, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    text = page.response.text
    assert re.search(r'<span id="ecps-remaining" data-seconds="(1[01]\d|120)">'
                     r"(1:[5][0-9]|2:00)</span>", text)
    assert 'id="ecps-announce" class="visually-hidden" aria-live="polite"' in text
    assert 'data-left-text="Temps restant :"' in text
    assert "Code à choisir dans l'application" in text
    continue_link = re.search(r'<a class="button" id="ecps-continue" href="([^"]+)"', text)
    assert urljoin(page.response.url, html.unescape(continue_link.group(1))) == page.done_url
    # without JavaScript: "I approved it, continue" before approving shows the page again
    early = page.done()
    assert early.status_code == 302 and "/login/ecps/wait" in early.headers["Location"]
    english = browser.get(page.response.url + "&lang=en").text
    assert "Approve in the e-CPS app" in english and "Cancel the request" in english
    assert 'lang="en"' in english and "Validez" not in english


def test_cancel_ends_the_request_on_the_phone_too(idp, enrolled, card_curl):
    rp, browser = idp.rp(), Browser(idp.ca, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    [request] = enrolled.pending()
    action, fields = _cancel_form(page)
    refused = browser.session.post(action, data={}, allow_redirects=False, timeout=10)
    assert refused.status_code == 400 and page.status() == "pending"  # CSRF token required
    cancelled = browser.session.post(action, data=fields, allow_redirects=False, timeout=10)
    assert cancelled.status_code == 303
    login = browser.get(urljoin(cancelled.url, cancelled.headers["Location"]))
    assert login.status_code == 200 and 'id="login-notice"' in login.text
    assert ("La demande e-CPS a été annulée : votre téléphone ne l'affiche plus."
            in html.unescape(login.text))
    assert 'id="ecps-login"' in login.text  # the professional may start again
    assert enrolled.pending() == [] and page.status() == "cancelled"
    [event] = audit_events(idp, "ecps.login.cancelled")
    assert event.id_nat == KIT and event.client_id == rp.client_id
    # the phone's late approval is refused; the page tells the request was cancelled
    token = enrolled.decision(request, code=page.code)
    late = requests.post(idp.issuer + "/ecps/api/decision", json={"decision": token},
                         verify=idp.ca, timeout=10)
    assert late.status_code == 410 and late.json()["error"] == "expired"
    done = page.done()
    assert done.status_code == 403 and 'data-reason="ecps_cancelled"' in done.text
    # cancelling twice: the request is over, its outcome is shown
    again = browser.session.post(action, data=fields, allow_redirects=False, timeout=10)
    assert again.status_code == 303 and "/login/ecps/done" in again.headers["Location"]


def test_cancel_after_approval_goes_on(idp, enrolled, card_curl):
    rp, browser = idp.rp(), Browser(idp.ca, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    enrolled.ok("approve", "--code", page.code)
    action, fields = _cancel_form(page)
    late = browser.session.post(action, data=fields, allow_redirects=False, timeout=10)
    assert late.status_code == 303 and "/login/ecps/done" in late.headers["Location"]
    assert page.status() == "approved" and audit_events(idp, "ecps.login.cancelled") == []


def test_cancel_of_another_browser_request_is_refused(idp, enrolled, card_curl):
    rp = idp.rp()
    page = ecps_page(Browser(idp.ca, card_curl), rp.authorization_url(), KIT)
    action, _ = _cancel_form(page)
    stranger = Browser(idp.ca, card_curl)
    form = stranger.get(rp.authorization_url())
    login = stranger.get(urljoin(form.url, form.headers["Location"]))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    refused = stranger.session.post(action, data={"csrf_token": csrf}, allow_redirects=False,
                                    timeout=10)
    assert refused.status_code == 400 and 'data-reason="login_expired"' in refused.text
    for query in ("", "?tx=%00&r=" + "x" * 500, "?tx[]=1&r=%ff"):  # garbage: a page, no 500
        garbage = stranger.session.post(f"{idp.issuer}/login/ecps/cancel{query}",
                                        data={"csrf_token": csrf}, allow_redirects=False,
                                        headers={"Accept": "text/html"}, timeout=10)
        assert garbage.status_code == 400 and 'id="failure"' in garbage.text
    assert page.status() == "pending"


def test_wrong_pick_in_english(idp, enrolled, card_curl):
    rp, browser = idp.rp(), Browser(idp.ca, card_curl)
    page = ecps_page(browser, rp.authorization_url(ui_locales="en"), KIT)
    assert "Time left:" in page.response.text
    wrong = next(c for c in enrolled.pending()[0]["candidates"] if c != page.code)
    code, output = enrolled.run("approve", "--code", wrong)
    assert code == 1 and "wrong code picked" in output
    done = page.done()
    assert done.status_code == 403 and 'data-reason="ecps_wrong_code"' in done.text
    assert "You picked another code than the one shown on this page." in done.text


# --- activation and devices -------------------------------------------------------------------

def test_activation_qr_code_has_its_quiet_zone(idp, browser, demo_card, phone_factory):
    activate_with_card(idp, browser, demo_card, phone_factory("first"))
    page = browser.get(idp.issuer + "/ecps/activate").text
    svg = re.search(r'<figure id="ecps-qr"><svg viewBox="0 0 (\d+) (\d+)" class="ecps-qr">'
                    r"<title>QR code d.activation e-CPS</title><g transform=\"scale\(5\)\">"
                    r'<path fill="#fff" d="M0 0h(\d+)v(\d+)h-\d+z"/>'
                    r'<path class="qrline" stroke="#000" d="M4 4\.5', page)
    assert svg, page  # served inline, scaled by 5, on a white square
    width, height, light_w, light_h = map(int, svg.groups())
    assert width == height == 5 * light_w and light_w == light_h
    modules = light_w - 2 * 4  # 4 light modules each side: the quiet zone
    assert modules in range(21, 178, 4)  # a QR code's size: 17 + 4 × version
    assert 'id="ecps-qr-text"' in page and "Si votre téléphone ne peut pas le scanner" in page


def test_device_list_dates_and_confirmation(idp, browser, enrolled):
    page = browser.get(idp.issuer + "/ecps/devices").text
    assert '<div class="table-wrap">' in page and page.count('<th scope="col">') == 5
    month = r"(janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)\.?"
    assert re.search(rf"<td>\d{{1,2}} {month} \d{{4}} à \d\d:\d\d</td>", page), page
    assert "<td>actif</td>" in page and "Activé le" in page
    english = browser.get(idp.issuer + "/ecps/devices?lang=en").text
    assert re.search(r"<td>\d{1,2} [A-Z][a-z]{2} \d{4} at \d\d:\d\d</td>", english), english
    assert "<td>active</td>" in english and "Activated on" in english

    device_id = re.search(r'data-device="([^"]+)" data-status="active"', english).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', english).group(1)
    revoked = browser.session.post(f"{idp.issuer}/ecps/devices/{device_id}/revoke",
                                   data={"csrf_token": csrf}, allow_redirects=False, timeout=10)
    assert revoked.status_code == 303
    after = browser.get(urljoin(revoked.url, revoked.headers["Location"]) + "&lang=fr").text
    assert 'id="device-revoked"' in after and "Appareil révoqué" in after
    assert "<td>révoqué</td>" in after


def test_cancelled_requests_count_as_unanswered(idp, enrolled, card_curl):
    """A stranger cannot push the phone again and again by cancelling each request: like
    a request replaced unanswered, a cancelled one counts against its network."""
    settings = idp.app.extensions["psc_idp"].settings
    rp = idp.rp()
    for _ in range(settings.ecps_max_failures):
        browser = Browser(idp.ca, card_curl)
        page = ecps_page(browser, rp.authorization_url(), KIT)
        assert len(enrolled.pending()) == 1
        action, fields = _cancel_form(page)
        assert browser.session.post(action, data=fields, allow_redirects=False,
                                    timeout=10).status_code == 303
    page = ecps_page(Browser(idp.ca, card_curl), rp.authorization_url(), KIT)
    assert page.status() == "pending" and enrolled.pending() == []  # no longer pushed
