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
as before; ``SubjectRole`` lists each profession once.

The claims are written as JSON text (``document``), from templates that read as psc.md §3's
example: that text is what is stored and served (``document.py``); ``build`` parses it."""

from __future__ import annotations

from json import loads
from json.encoder import encode_basestring as _string

from .columns import ACTIVITY, EXERCICE, SAVOIR_FAIRE, part
from .identifiers import origin_of
from .models import Practitioner

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

#: attributes of each part, in the order ``document`` takes their values
EXERCICE_ATTRS = tuple(c.attribute for c in part(EXERCICE))
SAVOIR_FAIRE_ATTRS = tuple(c.attribute for c in part(SAVOIR_FAIRE))
ACTIVITY_ATTRS = tuple(c.attribute for c in part(ACTIVITY))
_NO_SAVOIR_FAIRE = ("",) * len(SAVOIR_FAIRE_ATTRS)
_PROFESSION = EXERCICE_ATTRS.index("profession")
_SECTEUR, _ORGANIZATION, _ORGANIZATION_ID = (ACTIVITY_ATTRS.index(name) for name in (
    "secteur_activite", "raison_sociale", "structure_id"))

#: ``(identifier, origin, quality)`` of an ``Autres identifiants`` triple as listed
OtherIdValues = tuple[str, str, int | None]
#: a profession: its values, its savoir-faire's, its activities' (``*_ATTRS`` order)
ExerciceValues = tuple[tuple[str, ...], list[tuple[str, ...]], list[tuple[str, ...]]]

_DOCUMENT = (
    '{"preferred_username":%(id)s,"SubjectNameID":%(id)s,"given_name":%(given)s,'
    '"family_name":%(family)s,"email_verified":false,"Secteur_Activite":%(secteur)s,'
    '"SubjectOrganization":%(organization)s,"SubjectOrganizationID":%(organization_id)s,'
    '"SubjectRole":[%(roles)s],"PSI_Locale":%(psi_locale)s,"Mode_Acces_Raison":"",'
    '"Acces_Regulation_Medicale":"FAUX","UITVersion":"1.0","otherIds":[%(other_ids)s],'
    '"SubjectRefPro":{"codeCivilite":%(civilite)s,"exercices":[%(exercices)s]}}')
_OTHER_ID = '{"identifiant":%s,"origine":%s,"qualite":%d}'


def _object(claims: list[str], plain: bool, tail: str = "") -> str:
    """The template of a JSON object of string ``claims``: each value a ``%s`` (between
    quotes if ``plain``: written as it is), then ``tail``."""
    slot = '"%s"' if plain else "%s"
    return "{" + ",".join(f"{_string(claim)}:{slot}" for claim in claims) + tail + "}"


#: per ``plain``: one activity; one ``exercices[]`` entry (profession, savoir-faire, the
#: profession's activities); claim names from the column table
_ACTIVITY = {plain: _object([c.claim for c in part(ACTIVITY)], plain)
             for plain in (False, True)}
_EXERCICE = {plain: _object([c.claim for c in part(EXERCICE) + part(SAVOIR_FAIRE)], plain,
                            ',"activities":[%s]') for plain in (False, True)}


def document(id_nat: str, civilite: str, family_name: str, given_names: str,
             other_ids: list[OtherIdValues], exercices: list[ExerciceValues], *,
             plain: bool = False) -> str:
    """psc.md §3's userinfo except ``sub``, ``authMode`` and ``Palier_Authentification``
    (which the caller adds), as compact JSON text in claim order, from a practitioner's
    values; ``given_names`` as in the extract. ``plain``: the exercice, savoir-faire and
    activity values hold no character JSON escapes (``"``, ``\\``, control characters),
    so they are written as they are (the import's fast path)."""
    first = next((a for _, _, activities in exercices for a in activities), None)
    roles = dict.fromkeys(e[0][_PROFESSION] for e in exercices if e[0][_PROFESSION])
    return _DOCUMENT % {
        "id": _string(id_nat), "given": _string(given_names.split("'")[0]),
        "family": _string(family_name), "civilite": _string(civilite),
        "secteur": _string(_coded(first[_SECTEUR], SECTEUR_ACTIVITE_OID) if first else ""),
        "organization": _string(first[_ORGANIZATION] if first else ""),
        "organization_id": _string(first[_ORGANIZATION_ID] if first else ""),
        "roles": ",".join(_string(_coded(code, SUBJECT_ROLE_OID)) for code in roles),
        "psi_locale": _string(PSI_LOCALE),
        "other_ids": ",".join(_other_id(*item) for item in _listed(id_nat, other_ids)),
        "exercices": ",".join(_exercice(*e, plain) for e in exercices),
    }


def build(*values, **options) -> dict:
    """``document``'s claims as a dict (same arguments)."""
    return loads(document(*values, **options))


def apply_compat(document: dict, compat) -> dict:
    """``document`` (``build``'s claims, e.g. stored) with the spellings of the client's
    ``compat`` flags (COMPAT_FLAGS; others are ignored); ``document`` is left as it is."""
    claims = document
    if COMPAT_OTHER_IDS in compat:
        claims = {("otherIDs" if key == "otherIds" else key): value
                  for key, value in claims.items()}
    if COMPAT_TOP_LEVEL_GENRE in compat:
        genre = next((a["codeGenreActivite"] for e in document["SubjectRefPro"]["exercices"]
                      for a in e["activities"]), "")
        claims = {"codeGenreActivite": genre, **claims}
    if COMPAT_TOP_LEVEL_CIVILITE in compat:
        ref_pro = dict(document["SubjectRefPro"])
        claims = {"codeCivilite": ref_pro.pop("codeCivilite"), **claims,
                  "SubjectRefPro": ref_pro}
    return claims


def professional_claims(practitioner: Practitioner, compat=frozenset()) -> dict:
    """The claims of a practitioner read through the ORM (``build``), with the spellings of
    ``compat`` (``apply_compat``). Userinfo serves the stored ones instead
    (``lookup.professional_document``)."""
    exercices = [(_values(e, EXERCICE_ATTRS),
                  [_values(sf, SAVOIR_FAIRE_ATTRS) for sf in e.savoir_faire],
                  [_values(a, ACTIVITY_ATTRS) for a in e.activities])
                 for e in practitioner.exercices]
    other = [(o.identifier, o.origin, o.quality) for o in practitioner.other_ids]
    return apply_compat(build(practitioner.id_nat, practitioner.civilite,
                              practitioner.family_name, practitioner.given_names, other,
                              exercices), compat)


def _values(row, attrs: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(getattr(row, attribute) for attribute in attrs)


def _listed(id_nat: str, listed: list[OtherIdValues]) -> list[OtherIdValues]:
    """The person's identifiers from the extract's ``Autres identifiants``, in file order,
    with the idNat itself first when the extract does not list it."""
    if id_nat not in {identifier for identifier, _, _ in listed}:
        return [(id_nat, "", None), *listed]
    return listed


def _other_id(identifier: str, origin: str, quality: int | None) -> str:
    """Origin and quality derived from the identifier when the extract leaves them empty
    (psc-ps-api's rule)."""
    derived_origin, derived_quality = origin_of(identifier)
    return _OTHER_ID % (_string(identifier), _string(origin or derived_origin),
                        derived_quality if quality is None else quality)


def _coded(code: str, oid: str) -> str:
    return f"{code}^{oid}" if code else ""


def _exercice(values: tuple[str, ...], savoir_faire: list[tuple[str, ...]],
              activities: list[tuple[str, ...]], plain: bool) -> str:
    """One ``exercices[]`` entry per savoir-faire of the profession (one, with empty codes,
    if none), each with all the profession's activities (``codeGenreActivite`` as given:
    GENR01 when the extract has none)."""
    fill = tuple if plain else _strings
    places = ",".join(_ACTIVITY[plain] % fill(a) for a in activities)
    return ",".join(_EXERCICE[plain] % (*fill(values), *fill(sf), places)
                    for sf in savoir_faire or [_NO_SAVOIR_FAIRE])


def _strings(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(map(_string, values))
