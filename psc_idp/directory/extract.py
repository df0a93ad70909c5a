"""Reading the national directory extract (``Extraction_ProSanteConnect_Personne_activite``,
psc.md §8, §10): a header line then one ``|``-separated line per (practitioner, profession,
savoir-faire, activity), read by header names (``layout.py``). Streams the file and yields
one ``Entry`` per practitioner (idNat), or the reasons why their lines are rejected.

As PSC's loader, every usable line is kept, keyed on its idNat; what PSC does not check is
reported as a warning on the entry (identity columns, disagreeing person data: the first
line wins). Only unusable lines are rejected: wrong number of fields, undecodable text, no
idNat. A practitioner with an unusable line is rejected whole (and kept as stored):
importing the others would publish an incomplete set of activities.

The lines of one practitioner follow each other; PSC's extractor writes a merged person's
lines once per identifier, interleaved (``R A R A``): lines linked by their ``Autres
identifiants`` form one block, grouped by idNat. Memory is bounded by one block."""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .identifiers import ID_NAT_MAX_LENGTH, identity_warnings, parse_other_ids
from .layout import NOT_AN_EXTRACT, ExtractError, Layout, layout_of

__all__ = ["Entry", "Extract", "ExtractError", "Rejected", "blocks", "entries", "open_extract"]

#: the genre d'activité of activities whose file has no such column or value (TRE_R22
#: "Activité de soin et de pharmacie", what PSC sends, psc.md §3)
DEFAULT_GENRE_ACTIVITE = "GENR01"
#: lines kept together as one person's block, at most (a longer run is cut there)
MAX_BLOCK = 10_000
_SPACES = str.maketrans({"\xa0": " ", "\u202f": " ", "\u2007": " "})


@dataclass
class ExerciceEntry:
    fields: tuple[str, ...]
    savoir_faire: dict[tuple[str, ...], None] = field(default_factory=dict)
    activities: dict[tuple[str, ...], None] = field(default_factory=dict)


@dataclass
class Entry:
    """One practitioner as the extract describes them, duplicates removed, file order kept;
    ``person`` holds ``layout.person_attrs``, ``other_ids`` the raw ``Autres
    identifiants``; ``warnings`` are ``(line, message)``."""

    id_nat: str
    person: tuple[str, ...]
    lines: list[int]
    layout: Layout = field(repr=False, compare=False)
    other_ids: str = ""
    exercices: dict[tuple[str, ...], ExerciceEntry] = field(default_factory=dict)
    warnings: list[tuple[int, str]] = field(default_factory=list)

    def add(self, fields: list[str]) -> None:
        """Add one line; a line with no profession, savoir-faire or activity (a person
        known without a profession, psc.md §10) adds nothing to the exercices."""
        layout = self.layout
        exercice, savoir_faire = layout.exercice(fields), layout.savoir_faire(fields)
        activity = layout.activity(fields)
        has_savoir_faire, has_activity = any(savoir_faire), any(activity)
        if not (exercice[0] or has_savoir_faire or has_activity):
            return
        entry = self.exercices.get(exercice)
        if entry is None:
            entry = self.exercices[exercice] = ExerciceEntry(exercice)
        if has_savoir_faire:
            entry.savoir_faire[savoir_faire] = None
        if has_activity:
            entry.activities[activity] = None

    @cached_property
    def digest(self) -> str:
        """sha256 of what is stored: equal digests mean an unchanged practitioner. The
        columns a file lacks are left out, so a 49-column file digests as it always did."""
        person = self.person + ((self.other_ids,) if self.layout.other_ids_at is not None
                                else ())
        content = [person, [(e.fields, list(e.savoir_faire), list(e.activities))
                            for e in self.exercices.values()]]
        return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Rejected:
    """The lines of one practitioner (or one unidentifiable line), each with its reason."""

    id_nat: str
    reasons: dict[int, str]


@dataclass
class Extract:
    """An open extract: its layout and its data lines ``(line number, text)``."""

    path: Path
    layout: Layout
    lines: Iterator[tuple[int, str]]


@contextmanager
def open_extract(path: Path) -> Iterator[Extract]:
    """Open ``path`` and read its header. The encoding is UTF-8 (with or without BOM;
    UTF-16 with a BOM, Windows-1252 are accepted too), line endings LF, CRLF or CR."""
    encoding = _sniff(path)
    try:
        stream = open(path, encoding=encoding, errors="replace", newline=None)
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc.strerror}") from exc
    with stream:
        header = _read(path, stream, 1)
        if header is None:
            raise ExtractError(f"{path}: empty file, expected a directory extract")
        if "\ufffd" in header:
            raise ExtractError(f"{path}: {NOT_AN_EXTRACT}: the header is not text")
        names = _split(header.rstrip("\r\n").lstrip("\ufeff"), 0)
        yield Extract(Path(path), layout_of(path, names), _data_lines(path, stream))


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


def _split(text: str, width: int) -> list[str]:
    """The fields of a line, stripped of (non-breaking) spaces; the trailing ``|`` of the
    extract ends the last field."""
    if "\xa0" in text or "\u202f" in text or "\u2007" in text:
        text = text.translate(_SPACES)
    fields = [value.strip() for value in text.split("|")]
    if len(fields) > width and fields[-1] == "":
        fields.pop()
    return fields


def entries(lines: Iterable[tuple[int, str]], layout: Layout, *,
            test_ids: bool = False) -> Iterator[Entry | Rejected]:
    """One Entry per practitioner, or a Rejected listing each of their lines with its
    reason; ``test_ids``: warn about sandbox test identities."""
    for block in blocks(lines, layout, test_ids=test_ids):
        yield from block


def blocks(lines: Iterable[tuple[int, str]], layout: Layout, *,
           test_ids: bool = False) -> Iterator[list[Entry | Rejected]]:
    """The entries of each block of lines: consecutive lines of one idNat, or of idNats
    that one another's ``Autres identifiants`` link (one person). A block's lines are
    never split between two blocks, up to MAX_BLOCK lines."""
    parsed = ((number, text, _split(text, layout.width)) for number, text in lines)
    for block in _blocks(parsed, layout):
        groups: dict[str, list] = {}
        for line in block:
            groups.setdefault(_id_nat_of(line[2], layout), []).append(line)
        yield [_entry(id_nat, group, layout, test_ids) for id_nat, group in groups.items()]


def _blocks(parsed, layout: Layout) -> Iterator[list]:
    block, known = [], set()
    for line in parsed:
        id_nat = _id_nat_of(line[2], layout)
        room = block and id_nat and len(block) < MAX_BLOCK
        if room and id_nat in known:
            block.append(line)
            continue
        ids = _identifiers(line[2], id_nat, layout)
        if room and not ids.isdisjoint(known):
            block.append(line)
            known |= ids
            continue
        if block:
            yield block
        block, known = [line], ids
    if block:
        yield block


def _identifiers(fields: list[str], id_nat: str, layout: Layout) -> set[str]:
    """The idNat of a line and the identifiers its ``Autres identifiants`` lists."""
    if not id_nat:
        return set()
    at = layout.other_ids_at
    if at is None or at >= len(fields):
        return {id_nat}
    return {other.identifier for other in parse_other_ids(fields[at])} | {id_nat}


def _id_nat_of(fields: list[str], layout: Layout) -> str:
    return fields[layout.id_nat_at] if len(fields) > layout.id_nat_at else ""


def _entry(id_nat: str, lines: list, layout: Layout, test_ids: bool) -> Entry | Rejected:
    reasons, entry = {}, None
    for number, text, fields in lines:
        reason = _line_error(text, fields, layout, id_nat)
        if reason is not None:
            reasons[number] = reason
            continue
        person = layout.person(fields)
        other_ids = fields[layout.other_ids_at] if layout.other_ids_at is not None else ""
        if entry is None:
            entry = Entry(id_nat, person, [], layout, other_ids)
            entry.warnings.extend((number, message) for message in _identity(entry, test_ids))
        elif person != entry.person or other_ids != entry.other_ids:
            entry.warnings.append((number, _person_differs(entry, person, other_ids)))
        entry.add(fields)
        entry.lines.append(number)
    if not reasons:
        return entry
    first_bad = min(reasons)
    for number, _, _ in lines:
        reasons.setdefault(number, f"rejected with practitioner {id_nat} (see line "
                                   f"{first_bad})")
    return Rejected(id_nat, dict(sorted(reasons.items())))


def _identity(entry: Entry, test_ids: bool) -> list[str]:
    values = dict(zip(entry.layout.person_attrs, entry.person, strict=True))
    return identity_warnings(values["id_type"], values["identifier"], entry.id_nat,
                             test_ids=test_ids)


def _person_differs(entry: Entry, person: tuple[str, ...], other_ids: str) -> str:
    name = next((n for n, a, b in zip(entry.layout.person_attrs, entry.person, person,
                                      strict=True) if a != b), "other_ids")
    return (f"{name} differs from line {entry.lines[0]} of the same practitioner "
            f"(line {entry.lines[0]} kept)")


def _line_error(text: str, fields: list[str], layout: Layout, id_nat: str) -> str | None:
    if len(fields) != layout.width:
        return f"expected {layout.width} fields, found {len(fields)}"
    if "\ufffd" in text:
        return "characters not valid in the file's encoding"
    if "\x00" in text:
        return "NUL character"
    if not id_nat:
        return "no idNat (Identification nationale PP)"
    if len(id_nat) > ID_NAT_MAX_LENGTH:
        return f"idNat longer than {ID_NAT_MAX_LENGTH} characters"
    return None
