"""Fixtures for CPS cards: the sandbox test PKI and SoftHSM2 tokens (one per card, key
generated on the token) built once per session, and ``card_curl``, which performs a real
TLS handshake with curl signing through the PKCS#11 engine — the key never leaves SoftHSM."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from psc_idp.sandbox.cards import USER_PIN, Card, SoftHsm
from psc_idp.sandbox.demo import DEMO_CARDS, REFUSED_CARDS, provision
from psc_idp.sandbox.pki import TestPki, build_pki


class Cards:
    def __init__(self, pki: TestPki, hsm: SoftHsm):
        self.pki, self.hsm = pki, hsm

    def __getitem__(self, label: str) -> Card:
        return self.hsm.card(label)


@pytest.fixture(scope="session")
def cards(tmp_path_factory) -> Cards:
    root = tmp_path_factory.mktemp("sandbox")
    pki = build_pki(root / "pki")
    hsm = SoftHsm(root / "softhsm").create()
    for spec in DEMO_CARDS + REFUSED_CARDS:
        provision(hsm, pki, spec)
    return Cards(pki, hsm)


@pytest.fixture
def demo_card(cards) -> Card:
    return cards["CPS-899700245667"]


def curl_with_card(hsm: SoftHsm, ca: Path, card: Card | None, url: str,
                   headers: dict | None = None, pin: str = USER_PIN):
    """GET ``url`` presenting ``card`` (None: no card). Returns (status, headers, body);
    status 0 when the TLS handshake failed (body then holds curl's error)."""
    with tempfile.TemporaryDirectory() as tmp:
        head, body = Path(tmp) / "head", Path(tmp) / "body"
        argv = ["curl", "-sS", "--max-time", "20", "--cacert", str(ca), "-D", str(head),
                "-o", str(body), "-w", "%{http_code}"]
        if card is not None:
            argv += ["--engine", "pkcs11", "--key-type", "ENG",
                     "--key", f"{card.pkcs11_uri};pin-value={pin}", "--cert", card.certificate]
        for name, value in (headers or {}).items():
            argv += ["-H", f"{name}: {value}"]
        done = subprocess.run([*argv, url], env=hsm.curl_env(), capture_output=True,
                              text=True, timeout=60, check=False)
        if done.returncode != 0:
            return 0, {}, done.stderr
        parsed = {}
        for line in head.read_text().splitlines()[1:]:
            name, _, value = line.partition(":")
            if value:
                parsed[name.strip().lower()] = value.strip()
        return int(done.stdout), parsed, body.read_text()


@pytest.fixture
def card_curl(cards):
    ca = cards.pki.tls_ca

    def run(card, url, **kwargs):
        return curl_with_card(cards.hsm, ca, card, url, **kwargs)

    return run
