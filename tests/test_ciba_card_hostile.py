"""Generated hostile input at the CIBA card channel's API, in process (Flask's test client)
on both databases: bodies drawn from the endpoints' fields — the test cards' certificates
(valid, revoked, expired, untrusted), a fresh nonce, real signatures made in KIT's SoftHSM
token, a pending request and a decoy — with fields set to any JSON, dropped or added, and
raw hostile values. Whatever arrives, the answer is never a 5xx nor a stack trace, nothing
is logged as an error, and a refusal is ``{"error", "error_description"}`` with a status
and code the API documents (``psc_idp.ciba.card.ERRORS``)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psc_idp import create_app
from psc_idp.ciba import service
from psc_idp.ciba.card import ERRORS
from psc_idp.ciba.card_messages import decision_message, list_message

from .plugins.idp import base_settings
from .test_ciba_card import KIT, signed_by
from .test_ecps_hostile import BASE_URL, NASTY, hostile

API = "/auth/realms/esante-wallet/ciba/card"
SUCCESS = {"pending": 200, "decide": 200}
CERTIFICATES = (KIT, "CPS-REVOKED", "CPS-EXPIRED", "CPS-UNTRUSTED", "CPS-UNKNOWN")


@pytest.fixture
def inproc(keys_dir, database_url, cards):
    """KIT's card and a pending CARD request for KIT, a decoy beside it, and the real
    signatures a card tool would send for them."""
    pki = cards.pki
    app = create_app(base_settings(
        keys_dir, database_url, card_trust_anchors=[str(pki.trust_anchor)],
        card_intermediates=[str(pki.issuing_ca)], card_crls=[str(pki.crl)],
        ciba_card_rate_per_network=10 ** 6))
    http = app.test_client()
    with app.app_context():
        from psc_idp.extensions import db

        client = SimpleNamespace(client_id="hostile-client", name="hostile")
        rows = [service.new(client, cards[KIT].id_nat, "CARD", "openid", real=real,
                            lifetime=600, binding_message="42", delivery="poll",
                            notification_token=None, network="192.0.2.0/24")[1]
                for real in (True, False)]
        db.session.commit()
        nonce = http.post(API + "/nonce", base_url=BASE_URL).get_json()["nonce"]
        good = SimpleNamespace(
            nonce=nonce, requests=[r.id for r in rows],
            certificates=[Path(cards[c].certificate).read_text() for c in CERTIFICATES],
            signatures=[signed_by(cards, KIT, m)[0] for m in (
                list_message(nonce), decision_message(rows[0].id, rows[0].challenge,
                                                      "approve"))])
        yield http, good
        db.session.remove()
        db.engine.dispose()


def check(response, endpoint: str, caplog) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text[:500]
    assert "Traceback" not in text
    errors = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, errors
    caplog.clear()
    if response.status_code == SUCCESS[endpoint]:
        return
    documented = ERRORS[endpoint]
    assert response.status_code in documented, (response.status_code, text[:300])
    body = response.get_json()
    assert set(body) == {"error", "error_description"}, text[:300]
    assert body["error"] in documented[response.status_code]


def mutated(documented, names):
    return st.one_of(documented, documented, documented,
                     st.builds(lambda body, name, value: {**body, name: value},
                               documented, names, hostile),
                     st.builds(lambda body, name: {k: v for k, v in body.items() if k != name},
                               documented, names), hostile)


def fields(good, *names):
    values = {
        "certificate": st.sampled_from(good.certificates) | st.text(max_size=60),
        "nonce": st.sampled_from([good.nonce, good.nonce[:-1], "e30.e30"]) | st.text(
            max_size=30),
        "signature": st.sampled_from(good.signatures + ["A" * 342, "A" * 16]) | st.text(
            max_size=30),
        "request": st.sampled_from(good.requests + ["x" * 41]) | st.text(max_size=30),
        "decision": st.sampled_from(["approve", "deny", "APPROVE"]) | st.sampled_from(NASTY),
    }
    documented = st.fixed_dictionaries({name: values[name] for name in names})
    return mutated(documented, st.sampled_from(names) | st.text(min_size=1, max_size=10))


HOSTILE = settings(max_examples=120, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.data_too_large])


@HOSTILE
@given(data=st.data())
def test_generated_listings(inproc, caplog, data):
    http, good = inproc
    body = data.draw(fields(good, "certificate", "nonce", "signature"))
    check(http.post(API + "/pending", json=body, base_url=BASE_URL), "pending", caplog)


@HOSTILE
@given(data=st.data())
def test_generated_decisions(inproc, caplog, data):
    http, good = inproc
    body = data.draw(fields(good, "certificate", "request", "decision", "signature"))
    check(http.post(API + "/decide", json=body, base_url=BASE_URL), "decide", caplog)
