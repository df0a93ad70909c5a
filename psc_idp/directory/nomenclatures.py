"""Labels of the national nomenclatures (ANS "NOS" tables, FHIR CodeSystem JSON files in
psc_idp/data/nomenclatures/, see its README): the codes of the directory extract and of
PSC's claims (psc.md §3) turned into French labels. Loaded on first use, then cached."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

#: the code systems of the directory's columns (data/nomenclatures/README.md)
PROFESSION, USAGER_TITRE = "TRE_G15", "TRE_R95"
CATEGORIE_PROFESSIONNELLE, CIVILITE_EXERCICE, CIVILITE = "TRE_R09", "TRE_R11", "TRE_R81"
TYPE_SAVOIR_FAIRE, SPECIALITE_ORDINALE = "TRE_R04", "TRE_R38"
MODE_EXERCICE, SECTEUR_ACTIVITE, SECTION_PHARMACIEN = "TRE_R23", "TRE_R02", "TRE_G05"
ROLE, GENRE_ACTIVITE = "TRE_R21", "TRE_R22"

_TRE = re.compile(r"TRE[_-]([A-Z][0-9]{2})", re.IGNORECASE)


def label(system: str, code: str) -> str | None:
    """The label of ``code`` in ``system``, or None if either is unknown. ``system`` is a
    table name (``TRE_G15``, ``TRE-G15-ProfessionSante``), its CodeSystem URL or its OID
    (with or without ``urn:oid:``). Deprecated codes keep their label."""
    key = _key(system)
    return _tables().get(key, {}).get(code) if key else None


def profession_label(code: str) -> str | None:
    """The label of a profession code of the extract: TRE_G15, else TRE_R95 (titles such as
    71 Ostéopathe)."""
    return label(PROFESSION, code) or label(USAGER_TITRE, code)


def systems() -> list[str]:
    """The table names available, e.g. ``TRE_G15``."""
    return sorted(_tables())


def _key(system: str) -> str | None:
    found = _TRE.search(system)
    if found:
        return f"TRE_{found.group(1).upper()}"
    return _oids().get(system.removeprefix("urn:oid:"))


@cache
def _tables() -> dict[str, dict[str, str]]:
    return {key: {c["code"]: c.get("display", "") for c in data.get("concept", [])}
            for key, data in _load().items()}


@cache
def _oids() -> dict[str, str]:
    found = {}
    for key, data in _load().items():
        for identifier in data.get("identifier", []):
            found[identifier.get("value", "").removeprefix("urn:oid:")] = key
    return found


@cache
def _load() -> dict[str, dict]:
    folder = resources.files("psc_idp") / "data" / "nomenclatures"
    loaded = {}
    for item in folder.iterdir():
        if item.name.endswith(".json"):
            data = json.loads(item.read_text(encoding="utf-8"))
            loaded[_key(data["id"])] = data
    return loaded
