"""The sandbox's identities: the demo practitioners' cards (all in the demo directory,
``demo_directory.txt``) and the cards that exist to be refused."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class CardSpec:
    label: str
    id_nat: str
    family_name: str
    given_name: str
    title: str
    note: str
    authority: str = "cards-ca"
    expired: bool = False
    revoked: bool = False


DEMO_CARDS = [
    CardSpec("CPS-899700245667", "899700245667", "DOC0024566", "KIT", "Médecin",
             "médecin généraliste, deux activités (cabinet et centre de santé)"),
    CardSpec("CPS-899700218896", "899700218896", "MEDECIN0021889", "JEAN", "Médecin",
             "médecin"),
    CardSpec("CPS-899700075122", "899700075122", "PHARMACH0007512", "CAROLE", "Pharmacien",
             "pharmacien titulaire d'officine"),
    CardSpec("CPS-899700366240", "899700366240", "INFIRMIER0036624", "CLAIRE", "Infirmier",
             "infirmière"),
]

REFUSED_CARDS = [
    CardSpec("CPS-REVOKED", "899700218896", "MEDECIN0021889", "JEAN", "Médecin",
             "refused: card put in opposition (in the CRL)", revoked=True),
    CardSpec("CPS-EXPIRED", "899700366240", "INFIRMIER0036624", "CLAIRE", "Infirmier",
             "refused: card expired", expired=True),
    CardSpec("CPS-UNTRUSTED", "899700245667", "DOC0024566", "KIT", "Médecin",
             "refused: issued by a CA outside the trust anchors", authority="rogue-ca"),
    CardSpec("CPS-UNKNOWN", "899700000005", "INCONNU0000000", "PAUL", "Médecin",
             "refused: idNat absent from the directory"),
]


def provision(hsm, pki, spec: CardSpec):
    """Create the SoftHSM token of ``spec``; revoke or backdate it as the spec says."""
    extra = {}
    if spec.expired:
        extra = {"not_before": dt.datetime.now(dt.UTC) - dt.timedelta(days=400), "days": 365}
    card = hsm.provision(pki, label=spec.label, id_nat=spec.id_nat,
                         family_name=spec.family_name, given_name=spec.given_name,
                         title=spec.title, authority=spec.authority, note=spec.note, **extra)
    if spec.revoked:
        pki.revoke(card.serial)
    return card
