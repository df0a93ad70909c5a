"""ADELI professionals and e-CPS (psc.md §10), end to end over real HTTPS, on SQLite and
PostgreSQL: activation by codes is not offered to an ADELI idNat (the card is), and the
answer never tells who exists; an ADELI professional whose ADELI leaves the national
extract while their RPPS lists it keeps their phone and their history under the RPPS; a
person known without profession activates by codes and logs in."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from sqlalchemy import select

from psc_idp import audit
from psc_idp.audit_cli import audit_cli
from psc_idp.directory.cli import directory
from psc_idp.directory.columns import PSC_HEADER
from psc_idp.ecps.models import Device
from psc_idp.extensions import db
from psc_idp.sandbox.demo import CardSpec, provision

from .directory_fixtures import DEMO, DUPRE, LEFEVRE, LEFEVRE_ADELI, PSC51, line, write_extract
from .ecps_support import Phone, activate_with_card, ecps_page
from .plugins.idp import running_idp
from .support import Browser, code_from

KIT = "899700245667"
ADELI_CARD = CardSpec(f"CPS-{LEFEVRE_ADELI}", LEFEVRE_ADELI, "LEFEVRE", "FRANCOIS",
                      "Masseur-Kinesitherapeute", "ADELI, continued under an RPPS")


@pytest.fixture
def idp(keys_dir, database_url, cards, smtp_server, tmp_path):
    """The live server, KIT its console administrator."""
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     admins=[KIT]) as live:
        yield live


@pytest.fixture(scope="module")
def adeli_card(cards):
    provision(cards.hsm, cards.pki, ADELI_CARD)
    return cards[ADELI_CARD.label]


def run(idp, group, *args):
    result = idp.app.test_cli_runner().invoke(group, [*map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout


def ask_codes(idp, id_nat: str) -> requests.Response:
    browser = Browser(idp.ca, None)
    form = browser.get(idp.issuer + "/ecps/activate/codes")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return browser.session.post(idp.issuer + "/ecps/activate/codes",
                                data={"csrf_token": csrf, "id_nat": id_nat}, timeout=10)


def _shape(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", page)


def adeli_line() -> str:
    return line(LEFEVRE_ADELI, c3="LEFEVRE", c4="FRANCOIS", c10="+33 622222222",
                c11="francois.lefevre@example.test", c13="70", c16="LEFEVRE", c17="FRANCOIS")


def test_activation_by_codes_is_not_offered_to_adeli_identifiers(idp, tmp_path, smtp_server):
    run(idp, directory, "import", write_extract(tmp_path / "adeli.txt", [adeli_line()]))
    smtp_server.messages.clear()
    known, unknown = ask_codes(idp, LEFEVRE_ADELI), ask_codes(idp, "0999999999")
    assert (known.status_code, unknown.status_code) == (403, 403)
    assert _shape(known.text) == _shape(unknown.text)  # the shape decides, not the directory
    assert 'id="card-only"' in known.text and "carte CPS" in known.text
    assert 'id="card-activation" href="/auth/realms/esante-wallet/ecps/activate"' in known.text
    assert smtp_server.to("francois.lefevre@example.test") == []
    assert not list((tmp_path / "sms-outbox").glob("*.json"))
    # the app cannot complete a code activation for an ADELI idNat either
    code, output = Phone(tmp_path / "phone", idp.ca).run(
        "activate", "--issuer", idp.issuer, "--id-nat", LEFEVRE_ADELI, "--ca", idp.ca,
        "--sms-code", "12345678", "--email-code", "12345678")
    assert code != 0 and "card_activation_required" in output
    # an RPPS idNat still gets the usual answer, known or not
    assert ask_codes(idp, "899700000005").status_code == 200
    with idp.app.app_context():
        refused = db.session.scalars(select(audit.AuditEvent).where(
            audit.AuditEvent.event == "ecps.activation.started",
            audit.AuditEvent.outcome == "failure")).all()
        # refused before any rate limit, so aggregated: the first of the minute from this
        # network is written, the next one counted (audit.record_throttled)
        assert (LEFEVRE_ADELI, "card_only") in {(e.id_nat, e.detail["reason"])
                                                for e in refused}
        audit.flush_aggregates(int(time.time()) + audit.AGGREGATE_WINDOW)
        counted = db.session.scalars(select(audit.AuditEvent).where(
            audit.AuditEvent.event == "audit.aggregated")).all()
        written = [e for e in refused if e.detail["reason"] == "card_only"]
        assert len(written) + sum(e.detail["count"] - 1 for e in counted
                                  if e.detail["reason"] == "card_only") == 2


def test_adeli_replaced_by_rpps_keeps_phone_and_history(idp, browser, adeli_card, demo_card,
                                                        card_curl, tmp_path):
    run(idp, directory, "import", write_extract(tmp_path / "adeli.txt", [adeli_line()]))
    phone = Phone(tmp_path / "phone", idp.ca)
    activate_with_card(idp, browser, adeli_card, phone)  # the way ADELI professionals do

    # the next national extract: the ADELI is gone, the RPPS lists it (PSC's 51 columns)
    demo = [text + f"{text.split('|')[2]},RPPS,1||"
            for text in DEMO.read_text(encoding="utf-8").splitlines()[1:]]
    rpps = line(LEFEVRE, c3="LEFEVRE", c4="FRANCOIS", c10="+33 622222222", c13="70",
                c16="LEFEVRE", c17="FRANCOIS") + f"{LEFEVRE},RPPS,1;{LEFEVRE_ADELI},ADELI,1|GENR01|"
    full = write_extract(tmp_path / "next.txt", [*demo, rpps], header=PSC_HEADER)
    planned = run(idp, directory, "sync", "--dry-run", full)
    assert "1 linked to their new idNat;" in planned and "deactivated" not in planned
    synced = run(idp, directory, "sync", full)
    assert "1 imported, 4 updated, 0 unchanged, 1 linked to their new idNat;" in synced

    # the same phone logs in under the RPPS; the ADELI idNat no longer does
    rp = idp.rp()
    page = ecps_page(Browser(idp.ca, card_curl), rp.authorization_url(), LEFEVRE)
    assert "approved" in phone.ok("approve", "--code", page.code)
    tokens = rp.exchange(code_from(page.done())["code"]).json()
    userinfo = rp.userinfo(tokens["access_token"]).json()
    assert userinfo["preferred_username"] == LEFEVRE
    assert userinfo["otherIds"] == [
        {"identifiant": LEFEVRE, "origine": "RPPS", "qualite": 1},
        {"identifiant": LEFEVRE_ADELI, "origine": "ADELI", "qualite": 1}]
    ecps_page(Browser(idp.ca, card_curl), rp.authorization_url(), LEFEVRE_ADELI)
    assert phone.pending() == []
    # the ADELI card, still in the professional's reader, logs them in as who they became
    card_login = Browser(idp.ca, card_curl).with_card(adeli_card, rp.authorization_url())
    claims = rp.verify_id_token(rp.exchange(code_from(card_login)["code"]).json()["id_token"])
    assert claims["preferred_username"] == LEFEVRE and claims["authMode"] == "CARD"

    # the history: found from the RPPS, the chain intact
    with idp.app.app_context():
        assert [d.id_nat for d in db.session.scalars(select(Device))] == [LEFEVRE]
        assert audit.verify().ok
    exported = [json.loads(text) for text in run(
        idp, audit_cli, "export", "--since", "2000-01-01", "--id-nat", LEFEVRE).splitlines()]
    events = [(e["event"], e["id_nat"]) for e in exported]
    assert ("ecps.device.activated", LEFEVRE_ADELI) in events
    assert ("ecps.login.approved", LEFEVRE) in events
    (linked,) = [e for e in exported if e["event"] == "directory.linked"]
    assert (linked["id_nat"], linked["detail"]["former_id_nat"],
            linked["detail"]["devices_moved"]) == (LEFEVRE, LEFEVRE_ADELI, 1)

    # and in the console
    console = idp.issuer.split("/auth/")[0] + "/admin/console"
    admin = Browser(idp.ca, card_curl)
    first = admin.get(f"{console}/practitioners/{LEFEVRE}")
    status, headers, _ = card_curl(demo_card, first.headers["Location"])
    assert status == 302
    admin.get(headers["location"])
    page = admin.get(f"{console}/practitioners/{LEFEVRE}").text
    assert re.search(rf'id="formers">Anciens idNat liés :\s*<a [^>]+>{LEFEVRE_ADELI}</a>', page)
    assert 'data-status="active"' in page  # the moved device
    journal = admin.get(f"{console}/audit", params={"id_nat": LEFEVRE}).text
    assert 'data-event="ecps.device.activated"' in journal


def test_person_without_profession_activates_by_codes_and_logs_in(idp, smtp_server, tmp_path,
                                                                   card_curl):
    run(idp, directory, "import", PSC51)
    smtp_server.messages.clear()
    assert ask_codes(idp, DUPRE).status_code == 200
    [mail] = smtp_server.to("chloe.dupre@example.test")
    email_code = re.search(r"l'activer : (\d{8})", mail.get_content()).group(1)
    [sms] = (tmp_path / "sms-outbox").glob("*.json")
    sms_code = re.search(r"(\d{8})", json.loads(sms.read_text())["text"]).group(1)
    phone = Phone(tmp_path / "phone", idp.ca)
    phone.ok("activate", "--issuer", idp.issuer, "--id-nat", DUPRE, "--ca", idp.ca,
             "--sms-code", sms_code, "--email-code", email_code)

    rp = idp.rp()
    page = ecps_page(Browser(idp.ca, card_curl), rp.authorization_url(), DUPRE)
    assert "approved" in phone.ok("approve", "--code", page.code)
    tokens = rp.exchange(code_from(page.done())["code"]).json()
    claims = rp.verify_id_token(tokens["id_token"])
    assert (claims["preferred_username"], claims["family_name"]) == (DUPRE, "DUPRÉ")
    userinfo = rp.userinfo(tokens["access_token"]).json()
    assert userinfo["SubjectRefPro"] == {"codeCivilite": "MME", "exercices": []}
    assert (userinfo["SubjectRole"], userinfo["SubjectOrganization"]) == ([], "")
