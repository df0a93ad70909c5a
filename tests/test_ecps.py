"""e-CPS end to end over real HTTPS: activation (card + QR, or SMS + e-mail codes), login by
number matching approved by the ``psc-ecps`` simulator, and every way it must fail."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from psc_idp.ecps.models import LoginRequest
from psc_idp.extensions import db

from .ecps_support import PIN, EcpsPage, Phone, activate_with_card, ecps_page, start_ecps_login
from .support import Browser, code_from

KIT = "899700245667"
JEAN = "899700218896"


@pytest.fixture
def phone(phone_factory):
    return phone_factory("phone")


@pytest.fixture
def enrolled(idp, browser, demo_card, phone):
    """KIT's phone, activated with the card."""
    activate_with_card(idp, browser, demo_card, phone)
    return phone


def fresh_browser(idp, card_curl) -> Browser:
    return Browser(idp.ca, card_curl)


def test_activation_with_card_then_login(idp, enrolled, card_curl):
    devices = json.loads(enrolled.ok("devices", "--json"))
    assert len(devices) == 1 and devices[0]["this_device"] and devices[0]["status"] == "active"

    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    assert page.status() == "pending"
    [request] = enrolled.pending()
    assert page.code in request["candidates"] and len(request["candidates"]) == 3
    assert "approved" in enrolled.ok("approve", "--code", page.code)
    assert page.status() == "approved"
    params = code_from(page.done())
    tokens = rp.exchange(params["code"]).json()
    claims = rp.verify_id_token(tokens["id_token"])
    assert claims["authMode"] == "MOBILE" and claims["acr"] == "eidas1"
    assert set(claims["amr"]) == {"hwk", "pin", "mfa"}
    assert claims["preferred_username"] == KIT
    assert rp.userinfo(tokens["access_token"]).json()["authMode"] == "MOBILE"
    # the approval is used once: the done page cannot be replayed
    assert page.done().status_code == 400


def test_activation_with_sms_and_email_codes(idp, browser, phone, smtp_server, tmp_path):
    smtp_server.messages.clear()  # the server lives for the whole session
    form = browser.get(idp.issuer + "/ecps/activate/codes")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    sent = browser.session.post(idp.issuer + "/ecps/activate/codes",
                                data={"csrf_token": csrf, "id_nat": JEAN}, timeout=10)
    assert sent.status_code == 200 and 'id="codes-sent"' in sent.text

    [mail] = smtp_server.to("jean.medecin0021889@example.test")
    body = mail.get_content()
    assert mail["Subject"] == "Activation de votre e-CPS / e-CPS activation"
    assert mail["From"] == "psc-idp <no-reply@localhost>"
    email_code = re.search(r"l'activer : (\d{8})", body).group(1)
    assert "JEAN" in body and "SMS" in body
    [sms_file] = (tmp_path / "sms-outbox").glob("*.json")
    sms = json.loads(sms_file.read_text())
    assert sms["to"] == "+33 600000001"
    sms_code = re.search(r"(\d{8})", sms["text"]).group(1)
    assert sms_code != email_code

    common = ["activate", "--issuer", idp.issuer, "--id-nat", JEAN, "--ca", idp.ca]
    code, output = phone.run(*common, "--sms-code", sms_code, "--email-code", "00000000")
    assert code != 0 and "do not match" in output
    phone.ok(*common, "--sms-code", sms_code, "--email-code", email_code)
    assert json.loads(phone.ok("devices", "--json"))[0]["status"] == "active"
    # the codes are single use
    other = Phone(tmp_path / "other", idp.ca)
    code, output = other.run(*common, "--sms-code", sms_code, "--email-code", email_code)
    assert code != 0 and "invalid_activation" in output


def test_code_activation_says_the_same_for_unknown_professionals(idp, browser, smtp_server):
    answers = []
    for id_nat in (JEAN, "899700000005", "0123"):
        form = browser.get(idp.issuer + "/ecps/activate/codes")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        answers.append(browser.session.post(idp.issuer + "/ecps/activate/codes",
                                            data={"csrf_token": csrf, "id_nat": id_nat},
                                            timeout=10))
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1


def test_wrong_code_picked_denies_the_login(idp, enrolled, card_curl):
    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    wrong = next(c for c in enrolled.pending()[0]["candidates"] if c != page.code)
    code, output = enrolled.run("approve", "--code", wrong)
    assert code == 1 and "wrong code picked" in output and "you picked another code" in output
    assert page.status() == "wrong_code"  # told apart from a refusal
    done = page.done()
    assert done.status_code == 403 and 'data-reason="ecps_wrong_code"' in done.text
    assert "Vous avez choisi un autre code que celui affiché" in done.text
    assert "a été refusée" not in done.text and 'id="retry"' in done.text


def test_professional_denies(idp, enrolled, card_curl):
    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    assert "denied" in enrolled.ok("deny")
    assert page.status() == "denied"
    assert page.done().status_code == 403
    with idp.app.app_context():
        from psc_idp.audit import AuditEvent

        events = db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.event == "ecps.login.denied")).all()
        assert [e.outcome for e in events] == ["failure"] and events[0].id_nat == KIT


def test_expired_request(idp, enrolled, card_curl):
    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    [request] = enrolled.pending()
    with idp.app.app_context():
        row = db.session.get(LoginRequest, request["request"])
        row.expires_at -= 3600
        db.session.commit()
    assert page.status() == "expired"
    assert enrolled.pending() == []
    token = enrolled.decision(request, code=page.code)
    answer = requests.post(idp.issuer + "/ecps/api/decision", json={"decision": token},
                           verify=idp.ca, timeout=10)
    assert answer.status_code == 410 and answer.json()["error"] == "expired"
    assert page.done().status_code == 403


def test_revoked_device_cannot_approve(idp, browser, enrolled, card_curl):
    devices = browser.get(idp.issuer + "/ecps/devices")
    assert devices.status_code == 200  # the card session of the activation is still open
    device_id = re.search(r'data-device="([^"]+)" data-status="active"', devices.text).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', devices.text).group(1)
    revoked = browser.session.post(f"{idp.issuer}/ecps/devices/{device_id}/revoke",
                                   data={"csrf_token": csrf}, allow_redirects=False, timeout=10)
    assert revoked.status_code == 303
    assert 'data-status="revoked"' in browser.get(idp.issuer + "/ecps/devices").text

    rp, other = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(other, rp.authorization_url(), KIT)
    code, output = enrolled.run("approve", "--code", page.code)
    assert code != 0 and "unknown_device" in output
    assert page.status() == "pending"


def test_device_page_requires_a_card_login(idp, card_curl):
    response = fresh_browser(idp, card_curl).get(idp.issuer + "/ecps/devices")
    assert response.status_code == 302 and "/card/login?tx=" in response.headers["Location"]


def test_replayed_approval(idp, enrolled, card_curl):
    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    [request] = enrolled.pending()
    token = enrolled.decision(request, code=page.code)
    post = lambda: requests.post(idp.issuer + "/ecps/api/decision",  # noqa: E731
                                 json={"decision": token}, verify=idp.ca, timeout=10)
    assert post().json()["status"] == "approved"
    replay = post()
    assert replay.status_code == 409 and replay.json()["error"] == "already_decided"
    # and the same approval cannot serve a second login request
    second = ecps_page(fresh_browser(idp, card_curl), rp.authorization_url(), KIT)
    assert post().status_code == 409 and second.status() == "pending"


def test_approval_signed_by_another_key(idp, enrolled, card_curl):
    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    [request] = enrolled.pending()
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = enrolled.decision(request, code=page.code, key=stranger)
    answer = requests.post(idp.issuer + "/ecps/api/decision", json={"decision": forged},
                           verify=idp.ca, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
    assert page.status() == "pending"


def test_device_of_another_professional_cannot_approve(idp, cards, enrolled, card_curl,
                                                       tmp_path):
    jean_phone = Phone(tmp_path / "jean", idp.ca)
    activate_with_card(idp, fresh_browser(idp, card_curl), cards["CPS-899700218896"],
                       jean_phone)
    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    page = ecps_page(browser, rp.authorization_url(), KIT)
    [request] = enrolled.pending()
    assert jean_phone.pending() == []
    token = jean_phone.decision(request, code=page.code)
    answer = requests.post(idp.issuer + "/ecps/api/decision", json={"decision": token},
                           verify=idp.ca, timeout=10)
    assert answer.status_code == 404 and page.status() == "pending"


def test_request_is_bound_to_the_browser_that_made_it(idp, enrolled, card_curl):
    rp = idp.rp()
    victim = fresh_browser(idp, card_curl)
    page = ecps_page(victim, rp.authorization_url(), KIT)
    attacker = fresh_browser(idp, card_curl)
    enrolled.ok("approve", "--code", page.code)
    assert attacker.get(page.status_url).status_code == 404
    stolen = attacker.get(page.done_url)
    assert stolen.status_code == 400 and "Location" not in stolen.headers
    assert "code" in code_from(page.done())  # the professional's own browser still completes


def test_repeated_wrong_picks_silence_the_requesters_network(idp, enrolled, card_curl):
    """Not a lock on the professional: the requests of this network (every browser here
    is on 127.0.0.1) stop reaching the phone (tests/test_attacks_ecps.py: the owner, on
    another network, still logs in)."""
    settings = idp.app.extensions["psc_idp"].settings
    rp = idp.rp()
    for _ in range(settings.ecps_max_failures):
        page = ecps_page(fresh_browser(idp, card_curl), rp.authorization_url(), KIT)
        wrong = next(c for c in enrolled.pending()[0]["candidates"] if c != page.code)
        enrolled.run("approve", "--code", wrong)
        assert page.status() == "wrong_code"
    page = ecps_page(fresh_browser(idp, card_curl), rp.authorization_url(), KIT)
    assert enrolled.pending() == []  # silenced: the phone is not even asked
    code, output = enrolled.run("approve", "--code", page.code)
    assert code != 0 and page.status() == "pending"


def _shape(page: EcpsPage) -> str:
    """The page without what differs on every request or browser (code, ids, countdown,
    CSRF token)."""
    text = re.sub(r'id="ecps-code">\d\d<', 'id="ecps-code">NN<', page.response.text)
    text = re.sub(r'data-seconds="\d+">\d+:\d\d<', 'data-seconds="S">M:SS<', text)
    text = re.sub(r'data-seconds="\d+"', 'data-seconds="S"', text)
    text = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value="T"', text)
    return re.sub(r"(tx|r|k)=[\w-]+", r"\1=X", text)


def test_no_enumeration(idp, tmp_path, card_curl, cards):
    # JEAN has a device, KIT is in the directory without one, 899700000005 is unknown
    jean_phone = Phone(tmp_path / "jean", idp.ca)
    activate_with_card(idp, fresh_browser(idp, card_curl), cards["CPS-899700218896"],
                       jean_phone)
    rp = idp.rp()
    pages = [ecps_page(fresh_browser(idp, card_curl), rp.authorization_url(), id_nat)
             for id_nat in (JEAN, KIT, "899700000005")]
    assert len({_shape(p) for p in pages}) == 1
    assert {p.response.status_code for p in pages} == {200}
    assert {p.status() for p in pages} == {"pending"}


def test_rate_limit_per_id_nat_and_network(idp, card_curl):
    settings = idp.app.extensions["psc_idp"].settings
    rp, browser = idp.rp(), fresh_browser(idp, card_curl)
    statuses = [start_ecps_login(browser, rp.authorization_url(), "899700000005").status_code
                for _ in range(settings.ecps_rate_per_id_nat + 1)]
    assert statuses[:-1] == [303] * settings.ecps_rate_per_id_nat
    assert statuses[-1] == 429


def test_simulator_wipes_the_key_after_wrong_pins(enrolled):
    for attempt in range(4):
        code, output = enrolled.run("pending", pin="0000")
        assert code != 0 and f"{4 - attempt} attempt" in output
    code, output = enrolled.run("pending", pin="0000")
    assert "wiped" in output
    code, output = enrolled.run("pending", pin=PIN)
    assert code != 0 and "activate again" in output
    assert json.loads(Path(enrolled.home, "device.json").read_text())["key"] is None


def test_api_refuses_unsigned_and_garbage(idp):
    base = idp.issuer + "/ecps/api"
    assert requests.get(base + "/pending", verify=idp.ca, timeout=10).status_code == 401
    assert requests.get(base + "/pending", headers={"Authorization": "ECPS a.b.c"},
                        verify=idp.ca, timeout=10).status_code == 401
    assert requests.post(base + "/decision", data=b"\xff", verify=idp.ca,
                         timeout=10).status_code == 400
    bad_key = requests.post(base + "/activate", json={"qr_secret": "x", "public_jwk": {
        "kty": "RSA"}}, verify=idp.ca, timeout=10)
    assert bad_key.status_code == 400 and bad_key.json()["error"] == "invalid_key"
    unknown = requests.post(base + "/activate", json={
        "qr_secret": "nope", "public_jwk": ECKey.generate_key("P-256").as_dict(private=False)},
        verify=idp.ca, timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_activation"
