"""Attacks on e-CPS by strangers who know only a professional's public idNat, each against
a live psc-idp (real HTTPS, SQLite and PostgreSQL) with the ``psc-ecps`` phone and its
P-256 key. The strangers come from their own networks: psc-idp runs behind the shipped
nginx site, behind a load balancer nginx trusts for the client's address
(``networked_idp``), so each browser here comes from the address it chooses, exactly as
psc-idp would see it in production.

What must hold: the owner always logs in with their own phone while strangers hammer their
idNat from other networks; a stranger fills neither the phone nor the outboxes; "ce n'est
pas moi" silences the requester's network, never the professional; codes already sent
stay valid; counters and approvals hold under concurrent requests; no input answers a
500."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter

import pytest
import requests
from joserfc.jwk import ECKey

from psc_idp import audit
from psc_idp.extensions import db

from .ecps_support import (
    Phone,
    activate_with_card,
    codes_sent,
    ecps_page,
    request_codes,
    start_ecps_login,
)
from .plugins.ecps import CLIENT_ADDRESS, RecordingPush
from .support import Browser, code_from

KIT = "899700245667"  # the demo card's professional
JEAN = "899700218896"
JEAN_PHONE, JEAN_MAIL = "+33 600000001", "jean.medecin0021889@example.test"
OWNER, STRANGER, ELSEWHERE = "192.0.2.10", "203.0.113.66", "2001:db8:5:7::66"


pytestmark = pytest.mark.usefixtures("no_server_errors")


def browser_from(live, card_curl, address: str) -> Browser:
    browser = Browser(live.ca, card_curl)
    browser.session.headers[CLIENT_ADDRESS] = address
    return browser


def settings_of(live) -> dict:
    return live.app.extensions["psc_idp"].settings


def audit_events(live, event: str) -> list:
    with live.app.app_context():
        return db.session.scalars(db.select(audit.AuditEvent).where(
            audit.AuditEvent.event == event).order_by(audit.AuditEvent.seq)).all()


def owner_logs_in(live, rp, card_curl, phone: Phone, address: str = OWNER) -> dict:
    """The professional's own login: their browser, their phone picking their request
    (the one from their network), the relying party's tokens."""
    page = ecps_page(browser_from(live, card_curl, address), rp.authorization_url(), KIT)
    network = address.rsplit(".", 1)[0] + ".0/24"
    mine = [r for r in phone.pending() if r["network"] == network]
    assert len(mine) == 1 and page.code in mine[0]["candidates"]
    assert "approved" in phone.ok("approve", "--code", page.code, "--request",
                                  mine[0]["request"])
    tokens = rp.exchange(code_from(page.done())["code"]).json()
    return rp.verify_id_token(tokens["id_token"])


def away_from_window_edges(*windows: int) -> None:
    """Fixed-window counters restart at each window's start: keep a short test inside
    one window of each."""
    while any(int(time.time()) % w > w - 20 for w in windows):
        time.sleep(1)


def test_a_stranger_hammering_an_idnat_neither_blocks_its_owner_nor_floods_the_phone(
        networked, card_curl, demo_card, tmp_path):
    with networked() as live:
        phone = Phone(tmp_path / "kit", live.ca)
        activate_with_card(live, browser_from(live, card_curl, OWNER), demo_card, phone)
        settings, rp = settings_of(live), live.rp()
        away_from_window_edges(600)
        stranger = browser_from(live, card_curl, STRANGER)
        stranger.session.headers["X-Forwarded-For"] = OWNER  # a forged hop changes nothing
        statuses, owner_done = [], threading.Event()

        def hammer():  # from before the owner starts until after they are in
            while len(statuses) < 30 or not owner_done.is_set():
                statuses.append(start_ecps_login(stranger, rp.authorization_url(),
                                                 KIT).status_code)

        attack = threading.Thread(target=hammer)
        attack.start()
        while len(statuses) < 3:
            time.sleep(0.05)
        claims = owner_logs_in(live, rp, card_curl, phone)
        assert claims["preferred_username"] == KIT and claims["authMode"] == "MOBILE"
        owner_done.set()
        attack.join()
        limit = settings.ecps_rate_per_id_nat  # the stranger's budget, not the owner's
        assert statuses == [303] * limit + [429] * (len(statuses) - limit)
        # each request replaced the stranger's previous one, unanswered: after
        # ecps_max_failures of those the network's requests no longer reach the phone
        requested = {e.detail["network"]: [] for e in audit_events(live, "ecps.login.requested")}
        for event in audit_events(live, "ecps.login.requested"):
            requested[event.detail["network"]].append(event.outcome)
        assert requested == {"203.0.113.0/24": ["success"] * (settings.ecps_max_failures + 1)
                             + ["failure"] * (limit - settings.ecps_max_failures - 1),
                             "192.0.2.0/24": ["success"]}
        assert len(RecordingPush.sent) == settings.ecps_max_failures + 2  # owner's too
        assert phone.pending() == []

        # another stranger, elsewhere (IPv6: its /64), starts a login too: the phone shows
        # both, each with its network, and the owner answers theirs
        other = ecps_page(browser_from(live, card_curl, ELSEWHERE), rp.authorization_url(),
                          KIT)
        assert owner_logs_in(live, rp, card_curl, phone)["preferred_username"] == KIT
        assert other.status() == "pending"
        assert [r["network"] for r in phone.pending()] == ["2001:db8:5:7::/64"]


def test_ce_n_est_pas_moi_silences_the_requester_not_the_professional(
        networked, card_curl, cards, demo_card, tmp_path):
    with networked() as live:
        phone = Phone(tmp_path / "kit", live.ca)
        activate_with_card(live, browser_from(live, card_curl, OWNER), demo_card, phone)
        settings, rp = settings_of(live), live.rp()
        stranger = browser_from(live, card_curl, STRANGER)
        for _ in range(settings.ecps_max_failures):
            page = ecps_page(stranger, rp.authorization_url(), KIT)
            [request] = phone.pending()
            assert request["network"] == "203.0.113.0/24"
            assert "denied" in phone.ok("deny", "--request", request["request"])
            assert page.status() == "denied"
        pushes = len(RecordingPush.sent)
        page = ecps_page(stranger, rp.authorization_url(), KIT)
        assert page.status() == "pending"  # the stranger's page looks the same…
        assert phone.pending() == [] and len(RecordingPush.sent) == pushes  # …phone not asked
        [throttled] = audit_events(live, "ecps.throttled")
        assert throttled.id_nat == KIT and throttled.detail["network"] == "203.0.113.0/24"

        # the professional is not locked: they log in at once, from their network
        assert owner_logs_in(live, rp, card_curl, phone)["preferred_username"] == KIT
        # the silence is for this professional only: others' phones still get its requests
        jean_phone = Phone(tmp_path / "jean", live.ca)
        activate_with_card(live, browser_from(live, card_curl, ELSEWHERE),
                           cards["CPS-899700218896"], jean_phone)
        ecps_page(stranger, rp.authorization_url(), JEAN)
        assert [r["network"] for r in jean_phone.pending()] == ["203.0.113.0/24"]


def test_activation_code_requests_neither_void_earlier_codes_nor_flood_the_outboxes(
        networked, card_curl, smtp_server, tmp_path):
    with networked(ecps_codes_interval=1) as live:
        settings = settings_of(live)
        away_from_window_edges(settings.ecps_otp_lifetime, 3600)
        smtp_server.messages.clear()
        outbox = tmp_path / "sms-outbox"
        owner = browser_from(live, card_curl, OWNER)
        stranger = browser_from(live, card_curl, STRANGER)
        assert request_codes(owner, live.issuer, JEAN).status_code == 200
        first = codes_sent(outbox, smtp_server, JEAN_PHONE, JEAN_MAIL)
        assert len(first) == 1

        answers = []
        for _ in range(14):
            answers.append(request_codes(stranger, live.issuer, JEAN))
            time.sleep(0.5)
        statuses = [a.status_code for a in answers]
        sent = codes_sent(outbox, smtp_server, JEAN_PHONE, JEAN_MAIL)
        # at most ecps_codes_per_id_nat sends per code lifetime, one per interval…
        assert len(sent) == settings.ecps_codes_per_id_nat
        assert statuses.count(200) == len(sent) - 1
        recent = [a for a in answers if 'id="codes-recent"' in a.text]
        assert recent and {a.status_code for a in recent} == {429}
        # …and the stranger's network is cut off after ecps_codes_per_network requests
        assert statuses[settings.ecps_codes_per_network:] == [429] * (
            14 - settings.ecps_codes_per_network)
        assert 'data-reason="rate_limited"' in answers[-1].text

        # the codes the owner received first still activate their phone, as do later ones
        phone = Phone(tmp_path / "jean", live.ca)
        common = ["activate", "--issuer", live.issuer, "--id-nat", JEAN, "--ca", live.ca]
        sms, mail = first[0]
        phone.ok(*common, "--sms-code", sms, "--email-code", mail)
        second = Phone(tmp_path / "jean-2", live.ca)
        second.ok(*common, "--sms-code", sent[-1][0], "--email-code", sent[-1][1])
        code, output = Phone(tmp_path / "jean-3", live.ca).run(
            *common, "--sms-code", sms, "--email-code", mail)
        assert code != 0 and "invalid_activation" in output  # used


def activation_body(sms: str, mail: str) -> dict:
    return {"id_nat": JEAN, "sms_code": sms, "email_code": mail,
            "public_jwk": ECKey.generate_key("P-256").as_dict(private=False)}


def post_activation(live, body: dict, address: str) -> requests.Response:
    return requests.post(live.issuer + "/ecps/api/activate", json=body, verify=live.ca,
                         headers={CLIENT_ADDRESS: address}, timeout=30)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** 8:08d}"


def test_concurrent_code_guesses_are_counted_before_any_is_evaluated(
        networked, card_curl, smtp_server, tmp_path):
    with networked() as live:
        settings = settings_of(live)
        away_from_window_edges(settings.ecps_otp_lifetime)
        smtp_server.messages.clear()
        assert request_codes(browser_from(live, card_curl, OWNER), live.issuer,
                             JEAN).status_code == 200
        [(sms, mail)] = codes_sent(tmp_path / "sms-outbox", smtp_server, JEAN_PHONE, JEAN_MAIL)
        answers, start = [], threading.Barrier(30)

        def guess():
            body = activation_body(f"{secrets.randbelow(10 ** 8):08d}", wrong(mail))
            start.wait()
            answers.append(post_activation(live, body, STRANGER))

        threads = [threading.Thread(target=guess) for _ in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counted = Counter((a.status_code, a.json()["error"]) for a in answers)
        evaluated = settings.ecps_otp_attempts
        assert counted == {(400, "invalid_activation"): evaluated,
                           (429, "too_many_attempts"): 30 - evaluated}
        # the guesses did not spend the owner's attempts: their codes still work
        Phone(tmp_path / "jean", live.ca).ok(
            "activate", "--issuer", live.issuer, "--id-nat", JEAN, "--ca", live.ca,
            "--sms-code", sms, "--email-code", mail)


def test_a_set_of_codes_with_one_leaked_half_is_void_after_the_wrong_other_halves(
        networked, card_curl, smtp_server, tmp_path):
    """Someone who read the SMS (not the e-mail) guesses the e-mail code from many
    networks: the set counts those guesses wherever they come from."""
    with networked() as live:
        settings = settings_of(live)
        smtp_server.messages.clear()
        request_codes(browser_from(live, card_curl, OWNER), live.issuer, JEAN)
        [(sms, mail)] = codes_sent(tmp_path / "sms-outbox", smtp_server, JEAN_PHONE, JEAN_MAIL)
        for i in range(settings.ecps_otp_attempts):
            answer = post_activation(live, activation_body(sms, wrong(mail)), f"100.64.{i}.9")
            assert answer.status_code == 400 and answer.json()["error"] == "invalid_activation"
        late = post_activation(live, activation_body(sms, mail), "100.64.99.9")
        assert late.status_code == 400 and late.json()["error"] == "invalid_activation"


def test_one_approval_completes_one_login_under_concurrent_calls(idp, browser, demo_card,
                                                                 card_curl, tmp_path):
    phone = Phone(tmp_path / "kit", idp.ca)
    activate_with_card(idp, browser, demo_card, phone)
    rp = idp.rp()
    owner = Browser(idp.ca, card_curl)
    page = ecps_page(owner, rp.authorization_url(), KIT)
    [request] = phone.pending()
    token = phone.decision(request, code=page.code)
    decisions, dones, start = [], [], threading.Barrier(12)

    def decide():
        start.wait()
        decisions.append(requests.post(idp.issuer + "/ecps/api/decision",
                                       json={"decision": token}, verify=idp.ca, timeout=30))

    threads = [threading.Thread(target=decide) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(d.status_code for d in decisions) == [200] + [409] * 11
    assert page.status() == "approved"

    cookies, start = owner.session.cookies, threading.Barrier(12)

    def done():
        start.wait()
        dones.append(requests.get(page.done_url, cookies=cookies, verify=idp.ca,
                                  allow_redirects=False, timeout=30))

    threads = [threading.Thread(target=done) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    redirects = [d for d in dones if d.status_code == 302]
    assert len(redirects) == 1  # the others: the failure page, no redirect
    assert {d.status_code for d in dones if d not in redirects} <= {400, 403}
    tokens = rp.exchange(code_from(redirects[0])["code"]).json()
    assert rp.verify_id_token(tokens["id_token"])["preferred_username"] == KIT


@pytest.mark.parametrize("path", ["/ecps/api/activate", "/ecps/api/decision"])
def test_json_nested_20000_deep_is_a_400(idp, path):
    for raw in (b"[" * 20000 + b"]" * 20000, b'{"a":' * 20000 + b"1" + b"}" * 20000):
        answer = requests.post(idp.issuer + path, data=raw, verify=idp.ca, timeout=30,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code in (400, 413), answer.text[:200]
        assert answer.json()["error"] == "invalid_request"
        assert "Traceback" not in answer.text


def test_strings_no_database_stores_are_refused_at_the_edge(idp):
    for body in ({"qr_secret": "a\x00b", "public_jwk": {"kty": "EC"}},
                 {"decision": "\ud800"}, {"qr_secret": "x", "public_jwk": {"\x00": "y"}}):
        path = "/ecps/api/decision" if "decision" in body else "/ecps/api/activate"
        answer = requests.post(idp.issuer + path, data=json.dumps(body), verify=idp.ca,
                               headers={"Content-Type": "application/json"}, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    for header in ("ECPS \x01\x02", "ECPS " + "a" * 5000, "ECPS a.b.c", "Bearer x"):
        answer = requests.get(idp.issuer + "/ecps/api/devices", verify=idp.ca, timeout=10,
                              headers={"Authorization": header})
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
