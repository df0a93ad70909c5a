"""The ops console: card login through psc-idp itself (curl with the SoftHSM card, real TLS),
then the pages in a real headless Chromium carrying that session: health as readable
statuses, keys with their life, the audit log paged and filtered, a confirmation after
each change, sign-out, in French and in English; non-admins are refused."""

from __future__ import annotations

import re
import shutil
import time

import pytest

from psc_idp import audit
from psc_idp.extensions import db
from psc_idp.oidc.models import LoginSession

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


@pytest.fixture
def rotated_idp(keys_dir, database_url, cards, smtp_server, tmp_path):
    """The live server on a copy of the keys, its RS256 key rotated twice: the first
    retired, the second retiring, the third published and waiting to sign."""
    from psc_idp.keys.lifecycle import rotate

    own = tmp_path / "keys"
    shutil.copytree(keys_dir, own)
    with running_idp(own, database_url, cards, smtp_server, tmp_path, admins=[KIT]) as live:
        config = live.app.extensions["psc_idp"].settings
        rotate(own, config, ["RS256"], publish_delay=0)
        rotate(own, config, ["RS256"], publish_delay=3600)
        yield live


def test_console_shows_the_life_of_keys(rotated_idp, browser, demo_card, chromium_page):
    idp = rotated_idp
    assert card_login(idp, browser, demo_card).status_code == 200
    page = chromium_with(chromium_page, browser, idp)
    page.goto(console_url(idp, "/?lang=en"))
    rows = page.locator('#keys tr[data-kid^="rs256-"]')
    states = sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.state)"))
    assert states == ["next", "retired", "retiring"]
    retiring = page.locator('#keys tr[data-state="retiring"] td').all_text_contents()
    assert retiring[2] == "retiring" and retiring[6] != "—"  # when it stops signing
    assert page.get_attribute("#check-keys", "data-level") == "ok"


def test_console_for_an_admin(idp, browser, demo_card, phone_factory, chromium_page):
    rp = idp.rp()
    ciba = idp.rp(backchannel_token_delivery_mode="ping",
                  backchannel_client_notification_endpoint="https://rp.example/ciba",
                  backchannel_logout_uri="https://rp.example/bc", dpop_bound_access_tokens=True)
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    assert card_login(idp, browser, demo_card).status_code == 200
    page = chromium_with(chromium_page, browser, idp)

    # the audit chain is OK once the server's sequencer has chained and checkpointed what
    # the template database and this test wrote (a round a second; slower on a busy machine)
    with idp.app.app_context():
        from psc_idp import audit_sequencer

        audit_sequencer.run_once()
    page.goto(console_url(idp, "/"))
    levels = {li.get_attribute("id"): li.get_attribute("data-level")
              for li in page.locator("#health > li").all()}
    assert levels == {"check-database": "ok", "check-keys": "ok", "check-crl": "ok",
                      "check-audit": "ok", "check-ecps": "ok"}
    assert page.text_content("#check-database .badge") == "OK"
    assert page.locator('#keys tr[data-state="active"]').count() >= 1
    assert "cards-ca.crl" in page.text_content("#crls")
    page.click("#verify-audit")
    assert page.get_attribute("#verification", "data-ok") == "yes"

    page.goto(console_url(idp, "/clients"))
    assert page.text_content(f'tr[data-client="{ciba.client_id}"] td.options') == \
        "CIBA ping, déconnexion back-channel, DPoP"
    assert page.text_content(f'tr[data-client="{rp.client_id}"] td.options') == "—"
    row = page.locator(f'tr[data-client="{rp.client_id}"]')
    row.locator("button").click()
    assert page.locator(f'tr[data-client="{rp.client_id}"]').get_attribute(
        "data-enabled") == "no"
    confirmation = page.locator('p.notice-success[role="status"]')
    assert confirmation.count() == 1 and "désactivée" in confirmation.text_content()
    page.reload()  # shown once
    assert page.locator("#confirmation").count() == 0
    page.evaluate("""() => { const form = document.querySelector('#clients form');
        form.action = form.action.replace(/clients\\/[^/]+\\//, 'clients/no-such-app/'); }""")
    page.locator("#clients button").first.click()
    assert "no-such-app" in page.text_content('#refusal[role="alert"]')

    page.goto(console_url(idp, "/practitioners"))
    page.fill("#q", "DOC00")
    page.click("#search")
    page.click(f"text={KIT}")
    assert KIT in page.text_content("#practitioner")
    fingerprints = page.locator("#cards code").all_text_contents()
    assert fingerprints and all(re.fullmatch(r"[0-9a-f]{64}", f) for f in fingerprints)
    page.locator('#devices tr[data-status="active"] button').click()
    assert page.locator('#devices tr[data-status="revoked"]').count() == 1
    assert "révoqué" in page.text_content("#confirmation")
    code, output = phone.run("devices")
    assert code != 0 and "unknown_device" in output  # revoked at once

    page.goto(console_url(idp, "/audit"))
    page.select_option("#event", "client.disabled")
    page.click("#filter")
    events = page.locator("tr.event")
    assert events.count() == 1 and f"console:{KIT}" in events.first.text_content()


def test_console_ends_a_session_and_signs_out(idp, browser, demo_card, chromium_page):
    """An open session of the practitioner is ended from the console (with its
    confirmation); the console's own sign-out ends its SSO session at the IdP."""
    with idp.app.app_context():
        db.session.add(LoginSession(
            sid="console-test-session", id_nat=KIT, auth_time=int(time.time()),
            acr="eidas1", amr=["mfa", "otp"], auth_mode="MOBILE",
            expires_at=int(time.time()) + 3600))
        db.session.commit()
    assert card_login(idp, browser, demo_card).status_code == 200
    page = chromium_with(chromium_page, browser, idp)
    page.goto(console_url(idp, f"/practitioners/{KIT}"))
    page.locator('#sessions tr:has(input[value="console-test-session"]) button').click()
    assert "Session terminée" in page.text_content('p.notice-success[role="status"]')
    assert page.locator('#sessions input[value="console-test-session"]').count() == 0
    with idp.app.app_context():
        assert db.session.get(LoginSession, "console-test-session").ended_at is not None

    page.click("#logout")
    assert page.locator("#logged-out").count() == 1
    again = browser.get(console_url(idp, "/"))  # the same session cookie
    assert again.status_code == 302 and "/card/login?tx=" in again.headers["Location"]
    with idp.app.app_context():
        names = [e.event for e in db.session.scalars(db.select(audit.AuditEvent).where(
            audit.AuditEvent.id_nat == KIT))]
    assert "session.revoked" in names and "logout" in names


def test_console_audit_log_pages(idp, browser, demo_card, chromium_page):
    """50 records a page, newest first; the links to older and newer pages keep the
    filters; a date that is not one is said, not a failure."""
    with idp.app.app_context():
        audit.record_many("logout", [(KIT, {"n": n}) for n in range(120)])
        db.session.commit()
    assert card_login(idp, browser, demo_card).status_code == 200
    page = chromium_with(chromium_page, browser, idp)
    page.goto(console_url(idp, "/audit"))
    page.select_option("#event", "logout")
    page.fill("#id_nat", KIT)
    page.click("#filter")
    assert page.locator("tr.event").count() == 50
    assert page.locator("#newer").count() == 0
    assert '"n": 119' in page.locator("tr.event").first.text_content()
    page.click("#older")
    assert "event=logout" in page.url and f"id_nat={KIT}" in page.url and "page=2" in page.url
    assert page.locator("tr.event").count() == 50 and page.locator("#newer").count() == 1
    page.click("#older")
    assert page.locator("tr.event").count() == 20 and page.locator("#older").count() == 0
    assert page.input_value("#id_nat") == KIT and page.input_value("#event") == "logout"

    response = page.goto(console_url(idp, "/audit?since=31/12/2026&page=zz"))
    assert response.status == 200
    assert "31/12/2026" in page.text_content('[role="alert"]')


PAGES = ("/", "/clients", "/practitioners?q=DOC00", f"/practitioners/{KIT}", "/audit",
         "/audit/verify")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_console_in_one_language_fitting_a_phone(idp, browser, demo_card, chromium_page,
                                                 language):
    """Every console page in French and in English, dates in the page's language, tables
    in their scrolling box with column headers, no horizontal overflow at 390×844."""
    assert card_login(idp, browser, demo_card).status_code == 200
    page = chromium_with(chromium_page, browser, idp)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(console_url(idp, f"/?lang={language}"))  # remembered in a cookie
    assert page.get_attribute("html", "lang") == language
    heading = {"fr": "Console d'administration", "en": "Administration console"}[language]
    assert page.text_content("h1") == heading
    assert page.text_content("#check-database .badge") == "OK"
    assert page.text_content("#logout") == {"fr": "Déconnexion", "en": "Sign out"}[language]
    issued = page.locator("#crls tbody td").nth(2).text_content()
    date = {"fr": r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", "en": r"[A-Z][a-z]{2} \d{1,2}, \d{4}"}
    assert re.fullmatch(date[language] + ".*", issued), issued
    for path in PAGES:
        response = page.goto(console_url(idp, path))
        assert response.status == 200, path
        assert page.get_attribute("html", "lang") == language
        assert page.evaluate("document.documentElement.scrollWidth <= "
                             "document.documentElement.clientWidth"), path
        assert page.locator("table").count() == page.locator(".table-wrap > table").count()
        assert page.locator("th:not([scope=col])").count() == 0, path
        unlabelled = page.evaluate("""[...document.querySelectorAll(
            'input:not([type=hidden]), select')].filter(e => !e.labels.length).length""")
        assert unlabelled == 0, path


def test_console_says_what_fails(keys_dir, database_url, cards, smtp_server, tmp_path,
                                 browser_factory, demo_card, chromium):
    """No sequencer chains the audit records (``audit_chain_interval`` 0): past
    ``audit_unchained_alert`` the audit chain is a failure, said in words; the full
    verification finds no tampering but says the same alert."""
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path, admins=[KIT],
                     audit_chain_interval=0, audit_unchained_alert=1) as live:
        browser = browser_factory(live)
        assert card_login(live, browser, demo_card).status_code == 200
        time.sleep(2.1)
        context = chromium.new_context(ignore_https_errors=True, locale="fr-FR")
        try:
            page = chromium_with(context.new_page(), browser, live)
            page.goto(console_url(live, "/"))
            assert page.get_attribute("#check-audit", "data-level") == "failure"
            assert page.text_content("#check-audit .badge") == "Défaillance"
            assert "séquenceur" in page.text_content("#check-audit")
            page.click("#verify-audit")
            assert page.get_attribute("#verification", "data-ok") == "yes"
            assert "séquenceur" in page.text_content("#alerts")
        finally:
            context.close()


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
