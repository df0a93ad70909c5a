"""Prometheus metrics of login outcomes, read from a real /metrics scrape of the operations
listener while real logins happen: every card refusal reason and every e-CPS outcome moves
its own series of ``psc_idp_logins_total``, whose label set is closed (``ops.LOGIN_OUTCOMES``)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import requests
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from psc_idp import ops
from psc_idp.cards.verify import REASONS
from psc_idp.ecps.models import LoginRequest
from psc_idp.extensions import db

from .ecps_support import activate_with_card, ecps_page, start_ecps_login
from .plugins.idp import REPO, running_idp
from .support import Browser, code_from

KIT, JEAN, UNKNOWN = "899700245667", "899700218896", "899700000005"
DASHBOARD = REPO / "config" / "grafana" / "psc-idp.json"


def logins(text: str) -> dict[tuple[str, str], float]:
    """``psc_idp_logins_total`` by (method, outcome) in a Prometheus text exposition."""
    return {(s.labels["method"], s.labels["outcome"]): s.value
            for family in text_string_to_metric_families(text)
            if family.name == "psc_idp_logins"
            for s in family.samples if s.name == "psc_idp_logins_total"}


def scrape(idp) -> dict[tuple[str, str], float]:
    response = requests.get(idp.ops_url + "/metrics", timeout=10)
    assert response.status_code == 200
    return logins(response.text)


def moved(before: dict, after: dict) -> dict[tuple[str, str], float]:
    return {key: after[key] - before.get(key, 0) for key in after
            if after[key] != before.get(key, 0)}


@pytest.fixture
def idp(keys_dir, sqlite_template, cards, smtp_server, tmp_path):
    """A live server on SQLite (the counters are the process's, whatever the database);
    four failures from one network silence its e-CPS requests for an idNat."""
    path = tmp_path / "idp.sqlite3"
    shutil.copy(sqlite_template, path)
    with running_idp(keys_dir, f"sqlite:///{path}", cards, smtp_server, tmp_path,
                     ecps_max_failures=4) as live:
        yield live


def test_the_label_set_is_closed():
    assert set(REASONS) <= set(ops.LOGIN_OUTCOMES["card"])  # every card refusal reason
    before = logins(generate_latest().decode())
    assert set(before) >= {(m, o) for m, outcomes in ops.LOGIN_OUTCOMES.items()
                           for o in outcomes}  # every series exists from the start
    ops.login("card", "a reason nobody declared")
    ops.login("sms", "success")
    after = logins(generate_latest().decode())
    assert set(after) == set(before)
    assert moved(before, after) == {("card", "other"): 1}


def test_every_card_login_outcome_is_counted(idp, cards, card_curl):
    rp = idp.rp()
    before = scrape(idp)
    success = Browser(idp.ca, card_curl).with_card(cards["CPS-899700245667"],
                                                   rp.authorization_url())
    assert "code" in code_from(success)
    refused = {"CPS-REVOKED": "revoked", "CPS-EXPIRED": "expired",
               "CPS-UNTRUSTED": "untrusted", "CPS-UNKNOWN": "unknown_professional",
               None: "no_certificate"}
    for label, reason in refused.items():
        browser = Browser(idp.ca, card_curl)
        status, _, body = browser.card_curl(cards[label] if label else None,
                                            browser.start(rp.authorization_url()))
        assert status == 403 and f'data-reason="{reason}"' in body
    assert moved(before, scrape(idp)) == {("card", "success"): 1, **{
        ("card", reason): 1 for reason in refused.values()}}


def test_every_ecps_login_outcome_is_counted(idp, cards, card_curl, phone_factory):
    phone = phone_factory("kit")
    activate_with_card(idp, Browser(idp.ca, card_curl), cards["CPS-899700245667"], phone)
    rp = idp.rp()

    def page(id_nat=KIT):
        return ecps_page(Browser(idp.ca, card_curl), rp.authorization_url(), id_nat)

    before = scrape(idp)
    approved = page()
    phone.ok("approve", "--code", approved.code)
    assert "code" in code_from(approved.done())

    denied = page()
    phone.ok("deny")
    assert denied.done().status_code == 403

    wrong = page()
    picked = next(c for c in phone.pending()[0]["candidates"] if c != wrong.code)
    assert phone.run("approve", "--code", picked)[0] == 1
    assert wrong.done().status_code == 403

    late = page()
    with idp.app.app_context():
        row = db.session.scalars(db.select(LoginRequest).where(
            LoginRequest.status == "pending", LoginRequest.real.is_(True))).one()
        row.expires_at -= 3600
        db.session.commit()
    assert late.done().status_code == 403

    browser = Browser(idp.ca, card_curl)  # asks again before answering: the first is cancelled
    ecps_page(browser, rp.authorization_url(), KIT)
    ecps_page(browser, rp.authorization_url(), KIT)
    assert len(phone.pending()) == 1
    page()  # four failures from this network (4th: cancelled), the fifth request is silenced
    assert phone.pending() == []

    page(JEAN)  # in the directory, no e-CPS device
    limit = idp.app.extensions["psc_idp"].settings.ecps_rate_per_id_nat
    unknown = Browser(idp.ca, card_curl)
    statuses = [start_ecps_login(unknown, rp.authorization_url(), UNKNOWN).status_code
                for _ in range(limit + 1)]
    assert statuses == [303] * limit + [429]

    assert moved(before, scrape(idp)) == {
        ("ecps", "success"): 1, ("ecps", "denied"): 1, ("ecps", "wrong_code"): 1,
        ("ecps", "expired"): 1, ("ecps", "cancelled"): 2, ("ecps", "locked"): 1,
        ("ecps", "no_device"): 1, ("ecps", "unknown_id_nat"): limit,
        ("ecps", "rate_limited"): 1}


def test_the_grafana_dashboard_charts_real_metrics(idp, cards, card_curl):
    """Every metric an expression of config/grafana/psc-idp.json names is in a real scrape,
    and every psc-idp metric of the scrape is on the dashboard."""
    rp = idp.rp()
    assert "code" in code_from(Browser(idp.ca, card_curl).with_card(
        cards["CPS-899700245667"], rp.authorization_url()))  # requests: latency samples
    requests.get(idp.ops_url + "/metrics", timeout=10)
    text = requests.get(idp.ops_url + "/metrics", timeout=10).text
    families = [f for f in text_string_to_metric_families(text)
                if f.name.startswith("psc_idp_") and not f.name.endswith("_created")]
    exposed = {sample.name for family in families for sample in family.samples}

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] == "psc-idp" and dashboard["uid"] and dashboard["schemaVersion"]
    charts = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(charts) >= 10
    for panel in charts:
        assert panel["title"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["datasource"]["type"] == "prometheus" and panel["targets"]
        assert all(t["expr"] and t["refId"] for t in panel["targets"])
    used = {name for panel in charts for target in panel["targets"]
            for name in re.findall(r"\bpsc_idp_[a-z0-9_]+", target["expr"])}
    assert used <= exposed, used - exposed
    for family in families:
        assert {s.name for s in family.samples} & used, f"{family.name} is not on the dashboard"
