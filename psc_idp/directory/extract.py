"""Reading the national directory extract (``Extraction_ProSanteConnect_Personne_activite``,
psc.md §8): a header line then one ``|``-separated line of 49 columns per (practitioner,
profession, savoir-faire, activity). Streams the file and yields one ``Entry`` per
practitioner, or the reasons why their lines are rejected.

A practitioner's lines follow each other in the extract. A practitioner with one bad line
is rejected whole: importing the others would publish an incomplete set of activities."""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import groupby
from pathlib import Path

from .identifiers import IdentifierError, check_id_nat

HEADER = (
    "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP", "Nom de famille",
    "Prénoms", "Date de naissance", "Code commune de naissance", "Code pays de naissance",
    "Lieu de naissance", "Code sexe", "Téléphone (coord. correspondance)",
    "Adresse e-mail (coord. correspondance)", "Code civilité", "Code profession",
    "Code catégorie professionnelle", "Code civilité d'exercice", "Nom d'exercice",
    "Prénom d'exercice", "Code type savoir-faire", "Code savoir-faire", "Code mode exercice",
    "Code secteur d'activité", "Code section tableau pharmaciens", "Code rôle",
    "Numéro SIRET site", "Numéro SIREN site", "Numéro FINESS site",
    "Numéro FINESS établissement juridique", "Identifiant technique de la structure",
    "Raison sociale site", "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)", "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)", "Code type de voie (coord. structure)",
    "Libellé Voie (coord. structure)", "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)", "Code postal (coord. structure)",
    "Code commune (coord. structure)", "Code pays (coord. structure)",
    "Téléphone (coord. structure)", "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)", "Adresse e-mail (coord. structure)",
    "Code département (coord. structure)", "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
)
WIDTH = len(HEADER)

#: the practitioner columns kept, in the order of Entry.person
PERSON = ("id_type", "identifier", "family_name", "given_names", "phone", "email", "civilite")
_PERSON_AT = (0, 1, 3, 4, 10, 11, 12)
#: the exercice columns (13-17), savoir-faire (18-19) and activity columns (20-48)
EXERCICE = ("profession", "categorie", "civilite_exercice", "family_name", "given_name")
SAVOIR_FAIRE = ("type_code", "code")
ACTIVITY = (
    "mode_exercice", "secteur_activite", "section_pharmacien", "role", "siret", "siren",
    "finess_site", "finess_juridique", "structure_id", "raison_sociale", "enseigne",
    "complement_destinataire", "complement_geographique", "numero_voie", "indice_repetition",
    "type_voie", "libelle_voie", "mention_distribution", "bureau_cedex", "code_postal",
    "code_commune", "code_pays", "telephone", "telephone2", "telecopie", "email",
    "code_departement", "ancien_identifiant", "autorite_enregistrement",
)

#: The extract has no "genre d'activité" column, yet PSC's userinfo carries
#: ``codeGenreActivite`` (psc.md §3: GENR01). Every activity of the extract gets GENR01,
#: "Activité de soin et de pharmacie" (TRE_R22): no column allows deriving another genre.
DEFAULT_GENRE_ACTIVITE = "GENR01"


class ExtractError(Exception):
    """The file cannot be read as a directory extract; the message names file and cause."""


@dataclass
class ExerciceEntry:
    fields: tuple[str, ...]
    savoir_faire: dict[tuple[str, ...], None] = field(default_factory=dict)
    activities: dict[tuple[str, ...], None] = field(default_factory=dict)


@dataclass
class Entry:
    """One practitioner as the extract describes them, duplicates removed, file order kept."""

    id_nat: str
    person: tuple[str, ...]
    lines: list[int]
    exercices: dict[tuple[str, ...], ExerciceEntry] = field(default_factory=dict)

    def add(self, fields: list[str]) -> None:
        exercice = self.exercices.setdefault(tuple(fields[13:18]), ExerciceEntry(
            tuple(fields[13:18])))
        savoir_faire = tuple(fields[18:20])
        if any(savoir_faire):
            exercice.savoir_faire[savoir_faire] = None
        activity = tuple(fields[20:49])
        if any(activity):
            exercice.activities[activity] = None

    @cached_property
    def digest(self) -> str:
        """sha256 of what is stored: equal digests mean an unchanged practitioner."""
        content = [self.person, [(e.fields, list(e.savoir_faire), list(e.activities))
                                 for e in self.exercices.values()]]
        return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Rejected:
    """The lines of one practitioner (or one unidentifiable line), each with its reason."""

    id_nat: str
    reasons: dict[int, str]


@contextmanager
def open_extract(path: Path) -> Iterator[Iterator[tuple[int, str]]]:
    """Open ``path``, check its header; yields its data lines as ``(line number, text)``.

    The encoding is UTF-8 (with or without BOM; UTF-16 with a BOM, Windows-1252 are
    accepted too), line endings LF, CRLF or CR."""
    encoding = _sniff(path)
    try:
        stream = open(path, encoding=encoding, errors="replace", newline=None)
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc.strerror}") from exc
    with stream:
        header = _read(path, stream, 1)
        if header is None:
            raise ExtractError(f"{path}: empty file, expected a directory extract")
        _check_header(path, header)
        yield _data_lines(path, stream)


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as raw:
            first = raw.readline(1 << 20)
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc.strerror}") from exc
    if first.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:  # the first line may be cut in the middle of a character: not an error
        codecs.getincrementaldecoder("utf-8")().decode(first, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _read(path: Path, stream, number: int) -> str | None:
    try:
        return stream.readline() or None
    except OSError as exc:
        raise ExtractError(f"{path}: read error at line {number}: {exc.strerror}") from exc


def _data_lines(path: Path, stream) -> Iterator[tuple[int, str]]:
    number = 1
    while (text := _read(path, stream, number + 1)) is not None:
        number += 1
        text = text.rstrip("\r\n")
        if text.strip():
            yield number, text


def _check_header(path: Path, header: str) -> None:
    names = _split(header.rstrip("\r\n").lstrip("\ufeff"))
    expected = "a directory extract (Extraction_ProSanteConnect_Personne_activite)"
    if len(names) != WIDTH:
        raise ExtractError(f"{path}: not {expected}: header has {len(names)} columns, "
                           f"expected {WIDTH}")
    for position, (name, wanted) in enumerate(zip(names, HEADER, strict=True), 1):
        if name.strip() != wanted:
            raise ExtractError(f"{path}: not {expected}: header column {position} is "
                               f"{name.strip()!r}, expected {wanted!r}")


def _split(text: str) -> list[str]:
    """The fields of a line; the trailing ``|`` of the extract ends the last field."""
    fields = text.split("|")
    if len(fields) > WIDTH and fields[-1].strip() == "":
        fields.pop()
    return fields


def entries(lines: Iterable[tuple[int, str]]) -> Iterator[Entry | Rejected]:
    """One Entry per practitioner (consecutive lines with the same idNat), or a Rejected
    listing each of their lines with its reason."""
    parsed = ((number, text, _split(text)) for number, text in lines)
    for id_nat, group in groupby(parsed, key=lambda line: _id_nat_of(line[2])):
        yield _entry(id_nat, list(group))


def _id_nat_of(fields: list[str]) -> str:
    return fields[2].strip() if len(fields) > 2 else ""


def _entry(id_nat: str, lines: list[tuple[int, str, list[str]]]) -> Entry | Rejected:
    reasons = {}
    entry = None
    for number, text, raw in lines:
        reason = _line_error(text, raw)
        if reason is None:
            fields = [value.strip() for value in raw]
            person = tuple(fields[i] for i in _PERSON_AT)
            entry = entry or Entry(id_nat, person, [])
            if person == entry.person:
                entry.add(fields)
                entry.lines.append(number)
            else:
                reason = _person_differs(entry, person)
        if reason is not None:
            reasons[number] = reason
    if not reasons:
        return entry
    first_bad = min(reasons)
    for number, _, _ in lines:
        reasons.setdefault(number, f"rejected with practitioner {id_nat} (see line "
                                   f"{first_bad})")
    return Rejected(id_nat, dict(sorted(reasons.items())))


def _person_differs(entry: Entry, person: tuple[str, ...]) -> str:
    name = next(n for n, a, b in zip(PERSON, entry.person, person, strict=True) if a != b)
    return f"{name} differs from line {entry.lines[0]} of the same practitioner"


def _line_error(text: str, fields: list[str]) -> str | None:
    if len(fields) != WIDTH:
        return f"expected {WIDTH} fields, found {len(fields)}"
    if "\ufffd" in text:
        return "characters not valid in the file's encoding"
    if "\x00" in text:
        return "NUL character"
    id_type, identifier, id_nat = (fields[i].strip() for i in range(3))
    if not id_nat:
        return "no idNat (Identification nationale PP)"
    try:
        check_id_nat(id_type, identifier, id_nat)
    except IdentifierError as exc:
        return str(exc)
    if not fields[13].strip():
        return "no profession code"
    return None
