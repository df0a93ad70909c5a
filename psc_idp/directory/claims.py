"""The professional claims of PSC's userinfo for ``scope_all`` (psc.md §3), built from the
directory: identity, other identifiers, the first activity's organisation, and
``SubjectRefPro`` with its ``exercices[]`` and their ``activities[]`` (one per place of
practice). Claim names come from the column table (``columns.py``). Every code is a string;
a value the directory lacks is an empty string, never absent.

Several savoir-faire for one profession: PSC's claim has room for one per ``exercices[]``
entry (scalar ``codeTypeSavoirFaire``/``codeSavoirFaire``, as in PSC's own consumer model
``Practice``), and PSC's extract repeats a profession once per savoir-faire. psc-idp does the
same: **one ``exercices[]`` entry per (profession, savoir-faire)**, in file order, each with
the profession's activities; a profession without savoir-faire gives one entry with empty
codes, a person without profession none. An app reading ``exercices[0]`` sees the first one,
as before; ``SubjectRole`` lists each profession once."""

from __future__ import annotations

from .columns import ACTIVITY, EXERCICE, SAVOIR_FAIRE, part
from .identifiers import origin_of
from .models import Activity, Exercice, Practitioner

#: OID of the TRE_R02 secteur d'activité code system, suffix of ``Secteur_Activite``
SECTEUR_ACTIVITE_OID = "1.2.250.1.71.4.2.4"
#: OID suffix of ``SubjectRole`` (profession codes, psc.md §3)
SUBJECT_ROLE_OID = "1.2.250.1.213.1.1.5.5"
PSI_LOCALE = "1.2.250.1.213.1.3.1.1"

#: Per-client compatibility flags (a client's ``compat`` list) for the spellings other PSC
#: samples show (psc.md §3, §10): ``otherIDs`` instead of ``otherIds``; ``codeCivilite`` at
#: the top level instead of inside ``SubjectRefPro``; ``codeGenreActivite`` also at the
#: top level (the 2023 variant) — the first activity's, the one ``SubjectOrganization`` and
#: ``Secteur_Activite`` describe, empty without activity; each activity keeps its own.
COMPAT_OTHER_IDS = "otherIDs"
COMPAT_TOP_LEVEL_CIVILITE = "top-level-codeCivilite"
COMPAT_TOP_LEVEL_GENRE = "top-level-codeGenreActivite"
COMPAT_FLAGS = frozenset({COMPAT_OTHER_IDS, COMPAT_TOP_LEVEL_CIVILITE, COMPAT_TOP_LEVEL_GENRE})

_EXERCICE = tuple((c.claim, c.attribute) for c in part(EXERCICE))
_SAVOIR_FAIRE = tuple((c.claim, c.attribute) for c in part(SAVOIR_FAIRE))
_ACTIVITY = tuple((c.claim, c.attribute) for c in part(ACTIVITY))


def professional_claims(practitioner: Practitioner, compat=frozenset()) -> dict:
    """psc.md §3's userinfo except ``sub``, ``authMode`` and ``Palier_Authentification``,
    which the caller adds. ``compat``: flags among COMPAT_FLAGS; others are ignored."""
    first = _first_activity(practitioner)
    ref_pro = {"codeCivilite": practitioner.civilite,
               "exercices": [entry for e in practitioner.exercices for entry in _exercice(e)]}
    claims = {
        "preferred_username": practitioner.id_nat,
        "SubjectNameID": practitioner.id_nat,
        "given_name": practitioner.given_name,
        "family_name": practitioner.family_name,
        "email_verified": False,
        "Secteur_Activite": _coded(first.secteur_activite if first else "",
                                   SECTEUR_ACTIVITE_OID),
        "SubjectOrganization": first.raison_sociale if first else "",
        "SubjectOrganizationID": first.structure_id if first else "",
        "SubjectRole": _roles(practitioner),
        "PSI_Locale": PSI_LOCALE,
        "Mode_Acces_Raison": "",
        "Acces_Regulation_Medicale": "FAUX",
        "UITVersion": "1.0",
        "otherIds": other_ids(practitioner),
        "SubjectRefPro": ref_pro,
    }
    return _compat(claims, ref_pro, first, compat)


def _compat(claims: dict, ref_pro: dict, first: Activity | None, compat) -> dict:
    if COMPAT_OTHER_IDS in compat:
        claims = _renamed(claims, "otherIds", "otherIDs")
    if COMPAT_TOP_LEVEL_GENRE in compat:
        claims = {"codeGenreActivite": first.genre_activite if first else "", **claims}
    if COMPAT_TOP_LEVEL_CIVILITE in compat:
        claims = {"codeCivilite": ref_pro.pop("codeCivilite"), **claims}
    return claims


def other_ids(practitioner: Practitioner) -> list[dict]:
    """The person's identifiers from the extract's ``Autres identifiants``, in file order,
    with the idNat itself first when the extract does not list it; origin and quality
    derived from the identifier when the extract leaves them empty (psc-ps-api's rule)."""
    listed = [(o.identifier, o.origin, o.quality) for o in practitioner.other_ids]
    if practitioner.id_nat not in {identifier for identifier, _, _ in listed}:
        listed.insert(0, (practitioner.id_nat, "", None))
    return [_other_id(*item) for item in listed]


def _other_id(identifier: str, origin: str, quality: int | None) -> dict:
    derived_origin, derived_quality = origin_of(identifier)
    return {"identifiant": identifier, "origine": origin or derived_origin,
            "qualite": derived_quality if quality is None else quality}


def _first_activity(practitioner: Practitioner) -> Activity | None:
    return next((a for e in practitioner.exercices for a in e.activities), None)


def _coded(code: str, oid: str) -> str:
    return f"{code}^{oid}" if code else ""


def _roles(practitioner: Practitioner) -> list[str]:
    codes = dict.fromkeys(e.profession for e in practitioner.exercices if e.profession)
    return [_coded(code, SUBJECT_ROLE_OID) for code in codes]


def _renamed(claims: dict, old: str, new: str) -> dict:
    return {(new if key == old else key): value for key, value in claims.items()}


def _exercice(exercice: Exercice) -> list[dict]:
    """One entry per savoir-faire of the profession (one, with empty codes, if none)."""
    head = {claim: getattr(exercice, attribute) for claim, attribute in _EXERCICE}
    activities = [_activity(a) for a in exercice.activities]
    return [{**head, **{claim: getattr(sf, attribute) if sf else ""
                        for claim, attribute in _SAVOIR_FAIRE}, "activities": activities}
            for sf in exercice.savoir_faire or [None]]


def _activity(activity: Activity) -> dict:
    """One place of practice; ``codeGenreActivite`` as the extract gives it (GENR01 when
    it has none)."""
    return {claim: getattr(activity, attribute) for claim, attribute in _ACTIVITY}
