"""Card certificates that must be refused, each tried for real: a TLS handshake with the
card's key in SoftHSM against the live card origin, and the verifier on its own for the
revocation policy (stale or missing CRL, forged CRL, CRL refreshed while serving)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from psc_idp.cards.crl import CrlStore
from psc_idp.cards.verify import CardRejected, CardVerifier, load_certificates
from psc_idp.errors import REASONS
from psc_idp.sandbox.pki import card_subject, new_root, pem

from .support import code_from


def reason(body: str) -> str | None:
    found = re.search(r'id="failure" data-reason="([^"]+)"', body)
    return found.group(1) if found else None


def card_page(idp, browser, card, **kwargs):
    card_url = browser.start(idp.rp().authorization_url())
    return browser.card_curl(card, card_url, **kwargs)


def test_revoked_card_is_refused(idp, browser, cards):
    status, headers, body = card_page(idp, browser, cards["CPS-REVOKED"])
    assert status == 403 and "location" not in headers
    assert reason(body) == "revoked"
    assert "opposition" in body


def test_unknown_professional_is_refused(idp, browser, cards):
    status, headers, body = card_page(idp, browser, cards["CPS-UNKNOWN"])
    assert status == 403 and reason(body) == "unknown_professional"


@pytest.mark.parametrize("label,expected", [("CPS-EXPIRED", "expired"),
                                            ("CPS-UNTRUSTED", "untrusted")])
def test_expired_and_untrusted_cards_get_a_reason(idp, browser, cards, label, expected):
    # The embedded card listener accepts any certificate at the handshake, as nginx's
    # optional_no_ca: psc-idp judges it and says why (tests/test_attacks_embedded_*.py).
    status, headers, body = card_page(idp, browser, cards[label])
    assert status == 403 and "location" not in headers
    assert reason(body) == expected


def test_no_card_gets_a_page(idp, browser):
    status, headers, body = card_page(idp, browser, None)
    assert status == 403 and reason(body) == "no_certificate"


def test_wrong_pin_does_not_log_in(idp, browser, demo_card):
    status, headers, body = card_page(idp, browser, demo_card, pin="0000")
    assert status == 0


def test_certificate_header_from_an_untrusted_address(idp, browser, cards, demo_card):
    forged = Path(demo_card.certificate).read_text().replace("\n", "%0A")
    status, headers, body = card_page(idp, browser, None,
                                      headers={"X-SSL-Client-Cert": forged})
    assert status == 403 and "location" not in headers
    assert reason(body) == "no_certificate"


def card_page_via(proxied_idp, card_curl, card, **kwargs):
    from .support import Browser

    browser = Browser(proxied_idp.ca, card_curl)
    return browser, browser.card_curl(card, browser.start(
        proxied_idp.rp().authorization_url()), **kwargs)


def test_card_login_through_nginx(proxied_idp, card_curl, demo_card):
    browser, (status, headers, _) = card_page_via(proxied_idp, card_curl, demo_card)
    assert status == 302
    rp_response = browser.get(headers["location"])
    assert "code" in code_from(rp_response)


@pytest.mark.parametrize("label,expected", [
    ("CPS-EXPIRED", "expired"), ("CPS-UNTRUSTED", "untrusted"), ("CPS-REVOKED", "revoked"),
    ("CPS-UNKNOWN", "unknown_professional"), (None, "no_certificate"),
])
def test_refused_cards_through_nginx_get_a_reason(proxied_idp, card_curl, cards, label,
                                                  expected):
    card = cards[label] if label else None
    _, (status, headers, body) = card_page_via(proxied_idp, card_curl, card)
    assert status == 403 and "location" not in headers
    assert reason(body) == expected


def test_client_supplied_certificate_header_is_dropped_by_nginx(proxied_idp, card_curl,
                                                                demo_card):
    forged = Path(demo_card.certificate).read_text().replace("\n", "%0A")
    _, (status, headers, body) = card_page_via(proxied_idp, card_curl, None,
                                               headers={"X-SSL-Client-Cert": forged})
    assert status == 403 and reason(body) == "no_certificate"


# --- the verifier on its own -----------------------------------------------------------------

def verifier(cards, crl_paths=None, policy="fail_closed", **kwargs) -> CardVerifier:
    pki = cards.pki
    anchors = load_certificates([pki.trust_anchor])
    intermediates = load_certificates([pki.issuing_ca])
    crls = CrlStore([str(p) for p in (crl_paths if crl_paths is not None else [pki.crl])],
                    anchors + intermediates, refresh_interval=0, policy=policy, **kwargs)
    return CardVerifier(anchors, intermediates, crls, stale_policy=policy)


def card_pem(cards, label) -> str:
    return Path(cards[label].certificate).read_text()


def test_verifier_reads_the_identity(cards):
    identity = verifier(cards).verify(card_pem(cards, "CPS-899700075122"))
    assert identity.id_nat == "899700075122"
    assert (identity.given_name, identity.family_name, identity.title) == (
        "CAROLE", "PHARMACH0007512", "Pharmacien")


@pytest.mark.parametrize("label,expected", [
    ("CPS-REVOKED", "revoked"), ("CPS-EXPIRED", "expired"), ("CPS-UNTRUSTED", "untrusted"),
])
def test_verifier_refusals(cards, label, expected):
    with pytest.raises(CardRejected) as refused:
        verifier(cards).verify(card_pem(cards, label))
    # every refusal is explained to the professional (errors.REASONS: message and advice)
    assert refused.value.reason == expected and REASONS[expected].message and \
        REASONS[expected].advice


def test_garbage_is_malformed(cards):
    with pytest.raises(CardRejected) as refused:
        verifier(cards).verify("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
    assert refused.value.reason == "malformed"


def test_certificate_without_client_auth_is_refused(cards):
    key = ec.generate_private_key(ec.SECP256R1())
    server_cert = cards.pki.authority().issue(
        card_subject("899700218896", "MEDECIN0021889", "JEAN", "Médecin"), key.public_key(),
        usage="email")
    with pytest.raises(CardRejected) as refused:
        verifier(cards).verify(pem(server_cert))
    assert refused.value.reason == "wrong_usage"


def test_stale_crl_fails_closed_by_default_and_open_when_configured(cards, tmp_path):
    stale = tmp_path / "stale.crl"
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    stale.write_bytes(pem(cards.pki.authority().crl({}, this_update=old, next_update_days=7)))
    good = card_pem(cards, "CPS-899700218896")
    with pytest.raises(CardRejected) as refused:
        verifier(cards, [stale]).verify(good)
    assert refused.value.reason == "revocation_unknown"
    assert verifier(cards, [stale], policy="fail_open").verify(good).id_nat == "899700218896"


def test_missing_crl_fails_closed(cards):
    with pytest.raises(CardRejected) as refused:
        verifier(cards, []).verify(card_pem(cards, "CPS-899700218896"))
    assert refused.value.reason == "revocation_unknown"


def test_crl_signed_by_another_key_is_ignored(cards, tmp_path):
    """A CRL that does not verify must not be used (it could 'unrevoke' a card)."""
    impostor = new_root("TEST AC IGC-SANTE FORT PERSONNES")
    forged = x509.CertificateRevocationListBuilder().issuer_name(
        cards.pki.authority().certificate.subject)
    forged = forged.last_update(dt.datetime.now(dt.UTC)).next_update(
        dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).sign(impostor.key, hashes.SHA256())
    path = tmp_path / "forged.crl"
    path.write_bytes(pem(forged))
    store = verifier(cards, [path]).crls
    problems = store.refresh()
    assert len(problems) == 1 and "signature" in problems[0]
    assert store.snapshot() == []


def test_crl_refresh_picks_up_a_new_revocation(cards, tmp_path):
    pki = cards.pki
    crl_path = tmp_path / "cards.crl"
    crl_path.write_bytes(pki.crl.read_bytes())
    v = verifier(cards, [crl_path])
    label = "CPS-899700366240"
    assert v.verify(card_pem(cards, label)).id_nat == "899700366240"
    revoked = {**pki.revoked(), cards[label].serial: dt.datetime.now(dt.UTC)}
    crl_path.write_bytes(pem(pki.authority().crl(revoked, this_update=dt.datetime.now(dt.UTC))))
    v.crls.refresh()
    with pytest.raises(CardRejected) as refused:
        v.verify(card_pem(cards, label))
    assert refused.value.reason == "revoked"


def test_large_crl_is_indexed_in_a_child_process(cards, tmp_path, monkeypatch):
    """Big CRLs are parsed outside the serving process (no interpreter-lock stall) and
    looked up in a packed sorted index; same answers as the in-process path."""
    from psc_idp.cards import crl as crl_module

    monkeypatch.setattr(crl_module, "CHILD_PARSE_BYTES", 0)  # every CRL takes the child path
    children = []
    real_index_in_child = crl_module.index_in_child

    def counted(*args):  # the real child process runs; this only notes that it did
        children.append(args[-1])
        return real_index_in_child(*args)
    monkeypatch.setattr(crl_module, "index_in_child", counted)
    pki = cards.pki
    revoked_serial = cards["CPS-899700366240"].serial
    big = (1 << 158) + 12345
    path = tmp_path / "cards.crl"
    path.write_bytes(pem(pki.authority().crl(
        {**{s: dt.datetime.now(dt.UTC) for s in range(1, 2000)},
         revoked_serial: dt.datetime.now(dt.UTC), big: dt.datetime.now(dt.UTC)})))
    v = verifier(cards, [path])
    assert v.crls.refresh() == []
    indexed = v.crls.snapshot()[0]
    assert children == [str(path)] and indexed.entries == 2001
    assert big in indexed.serials and 1999 in indexed.serials and 2000 not in indexed.serials
    with pytest.raises(CardRejected) as refused:
        v.verify(card_pem(cards, "CPS-899700366240"))
    assert refused.value.reason == "revoked"
    assert v.verify(card_pem(cards, "CPS-899700245667")).id_nat == "899700245667"

    impostor = new_root("TEST AC IGC-SANTE FORT PERSONNES")
    forged = x509.CertificateRevocationListBuilder().issuer_name(
        pki.authority().certificate.subject).last_update(dt.datetime.now(dt.UTC)).next_update(
        dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).sign(impostor.key, hashes.SHA256())
    bad = tmp_path / "forged.crl"
    bad.write_bytes(pem(forged))
    problems = verifier(cards, [bad]).crls.refresh()
    assert len(problems) == 1 and "signature" in problems[0]
