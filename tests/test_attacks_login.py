"""Attacks on the login flow, each against a running psc-idp over real TLS with SoftHSM
cards: login CSRF through a leaked transaction id, a second card on a transaction already
authenticated, unbounded authorization requests, and the audit trail as an amplifier."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from .support import Browser, code_from, query


def without_key(card_url: str) -> str:
    params = query(card_url)
    return card_url.split("?")[0] + "?" + urlencode({"tx": params["tx"]})


def test_a_leaked_transaction_id_cannot_take_another_card(idp, browser, cards, demo_card,
                                                          card_curl):
    """The attacker knows the victim's transaction id (a login page URL in a log or a
    Referer) and puts their own card on it: refused without the login page's key, so the
    victim's browser can never receive the attacker's identity."""
    rp = idp.rp()
    card_url = browser.start(rp.authorization_url())
    attacker = cards["CPS-899700218896"]
    for url in (without_key(card_url), card_url.replace("k=", "k=x")):
        status, _, body = card_curl(attacker, url)
        assert status == 400 and "login_expired" in body
    params = code_from(browser.get(card_curl(demo_card, card_url)[1]["location"]))
    claims = rp.verify_id_token(rp.exchange(params["code"]).json()["id_token"])
    assert claims["preferred_username"] == demo_card.id_nat


def test_a_second_card_authentication_is_refused(idp, browser, cards, demo_card, card_curl):
    rp = idp.rp()
    card_url = browser.start(rp.authorization_url())
    first = card_curl(demo_card, card_url)
    assert first[0] == 302
    second = card_curl(cards["CPS-899700218896"], card_url)
    assert second[0] == 400 and "already_authenticated" in second[2]
    params = code_from(browser.get(first[1]["location"]))
    claims = rp.verify_id_token(rp.exchange(params["code"]).json()["id_token"])
    assert claims["preferred_username"] == demo_card.id_nat


def test_authorization_requests_keep_only_what_psc_idp_understands(idp, browser):
    rp = idp.rp()
    junk = {f"x{i}": "y" * 150 for i in range(300)}  # 48 kB: a POSTed request (the body cap
    response = browser.session.post(  # is 64 kB)
        rp.url("authorization_endpoint"), data={**query(rp.authorization_url()), **junk},
        allow_redirects=False, timeout=10)
    assert response.status_code == 302 and "/login?tx=" in response.headers["Location"]
    tx_id = query(response.headers["Location"])["tx"]
    with idp.app.app_context():
        from psc_idp.extensions import db
        from psc_idp.oidc.models import LoginTransaction

        params = db.session.get(LoginTransaction, tx_id).params
    assert set(params) <= {"response_type", "client_id", "redirect_uri", "scope", "state",
                           "nonce", "acr_values", "code_challenge", "code_challenge_method"}
    assert sum(len(v) for v in params.values()) < 1000


def test_anonymous_card_failures_are_aggregated(idp, card_curl):
    """Thirty card logins without a card from one network write one record, then one
    summary with the count: the trail shows the attack without growing with it."""
    browser = Browser(idp.ca, card_curl)
    rp = idp.rp()
    card_url = browser.start(rp.authorization_url())
    for _ in range(30):
        status, _, body = card_curl(None, card_url)
        assert status == 403 and "no_certificate" in body
    with idp.app.app_context():
        from psc_idp import audit
        from psc_idp.extensions import db

        def records(event):
            return db.session.scalars(db.select(audit.AuditEvent).where(
                audit.AuditEvent.event == event)).all()

        failures = [r for r in records("login") if r.outcome == "failure"]
        # one record per minute: two if the loop crossed a minute boundary
        assert 1 <= len(failures) <= 2
        assert {r.detail["reason"] for r in failures} == {"no_certificate"}
        assert audit.flush_aggregates(int(time.time()) + audit.AGGREGATE_WINDOW) >= 1
        summary = records("audit.aggregated")
        assert {(s.detail["reason"], s.detail["source"]) for s in summary} == {
            ("no_certificate", "127.0.0.0/24")}
        assert len(failures) + sum(s.detail["count"] - 1 for s in summary) == 30
        assert audit.verify().ok
