"""The relying parties' organisation certificates of the session (``orgs``): IGC-Santé-shaped
certificates minted by the sandbox, their keys in the session's SoftHSM, for the mTLS and
token-exchange tests (a session fixture lives in one plugin: a test module importing it
would mint the same tokens twice)."""

from __future__ import annotations

import pytest

from psc_idp.sandbox import orgs as sandbox_orgs

ORGANISATION = "CLINIQUE DES TESTS"


class Orgs:
    """The relying parties' certificates of the session, by role."""

    def __init__(self, cards):
        hsm, pki = cards.hsm, cards.pki
        self.pki = pki

        def mint(label, **kwargs):
            return sandbox_orgs.mint(hsm, pki, label=label, client_id=label.lower(),
                                     organisation=ORGANISATION, **kwargs)

        self.good = mint("ORG-GOOD", structure_id="1750000001")
        self.other = mint("ORG-OTHER", structure_id="1750000002")
        self.untrusted = mint("ORG-ROGUE", structure_id="1750000003", authority="rogue-ca")
        self.revoked = mint("ORG-REVOKED", structure_id="1750000004")
        pki.revoke(self.revoked.serial, "org-ca")
        self.self_signed = sandbox_orgs.self_signed(hsm, label="SELF-GOOD", client_id="ss")
        self.self_other = sandbox_orgs.self_signed(hsm, label="SELF-OTHER", client_id="so")


@pytest.fixture(scope="session")
def orgs(cards) -> Orgs:
    return Orgs(cards)
