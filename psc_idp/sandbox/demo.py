"""The sandbox's identities: the demo practitioners' cards (all in the demo directory,
``demo_directory.txt``) and the cards that exist to be refused."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

#: the demo practitioners, in the national extract's format (psc.md §8)
DEMO_DIRECTORY = Path(__file__).with_name("demo_directory.txt")
#: the practitioner whose card opens the ops console of the sandbox (``admins``)
CONSOLE_ADMIN = "899700245667"
NUMBERS = {1: "une activité", 2: "deux activités", 3: "trois activités"}


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


def directory_rows(path: Path = DEMO_DIRECTORY) -> list[dict[str, str]]:
    """The extract's lines as {column header: value}."""
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    names = header.split("|")
    return [dict(zip(names, line.split("|"), strict=True)) for line in lines if line]


def activities(id_nat: str) -> str:
    """What the demo directory says of ``id_nat``'s activities: how many, where."""
    sites = [row["Raison sociale site"] for row in directory_rows()
             if row["Identification nationale PP"] == id_nat]
    count = NUMBERS.get(len(sites), f"{len(sites)} activités")
    return f"{count} ({', '.join(sites)})"


def demo_card(id_nat: str, family_name: str, given_name: str, title: str, what: str
              ) -> CardSpec:
    """A demo practitioner's card, described from the demo directory."""
    admin = ", administrateur de la console" if id_nat == CONSOLE_ADMIN else ""
    return CardSpec(f"CPS-{id_nat}", id_nat, family_name, given_name, title,
                    f"{what}, {activities(id_nat)}{admin}")


DEMO_CARDS = [
    demo_card("899700245667", "DOC0024566", "KIT", "Médecin", "médecin généraliste"),
    demo_card("899700218896", "MEDECIN0021889", "JEAN", "Médecin", "médecin"),
    demo_card("899700075122", "PHARMACH0007512", "CAROLE", "Pharmacien",
              "pharmacien titulaire d'officine"),
    demo_card("899700366240", "INFIRMIER0036624", "CLAIRE", "Infirmier", "infirmière"),
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
