"""One practitioner as an extract describes them (psc.md §8, §10): the ``Entry`` built from
their lines — person, exercices, savoir-faire, activities, duplicates removed, file order
kept — with the warnings PSC's loader would not raise, or the ``Rejected`` reasons of
unusable lines (a practitioner with one is rejected whole: importing the others would
publish an incomplete set of activities)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

from .identifiers import ID_NAT_MAX_LENGTH, identity_warnings
from .layout import Layout


@dataclass
class ExerciceEntry:
    fields: tuple[str, ...]
    savoir_faire: dict[tuple[str, ...], None] = field(default_factory=dict)
    activities: dict[tuple[str, ...], None] = field(default_factory=dict)


@dataclass
class Entry:
    """One practitioner as the extract describes them, duplicates removed, file order kept;
    ``person`` holds ``layout.person_attrs``, ``other_ids`` the raw ``Autres
    identifiants``; ``warnings`` are ``(line, message)``; ``plain``: every value is one
    JSON writes as it is (``plain``, checked by ``build`` on each line), so the digest and
    the stored claims are written without escaping."""

    id_nat: str
    person: tuple[str, ...]
    lines: list[int]
    layout: Layout = field(repr=False, compare=False)
    other_ids: str = ""
    exercices: dict[tuple[str, ...], ExerciceEntry] = field(default_factory=dict)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    plain: bool = False

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
        if self.plain:  # json.dumps's text, written directly
            exercices = ", ".join(map(_plain_exercice, self.exercices.values()))
            text = f"[{_plain(person)}, [{exercices}]]"
        else:
            text = json.dumps([person, [(e.fields, list(e.savoir_faire), list(e.activities))
                                        for e in self.exercices.values()]], ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def _plain(values) -> str:
    """``json.dumps(list(values), ensure_ascii=False)`` of strings that need no escaping."""
    return '["' + '", "'.join(values) + '"]' if values else "[]"


def _plain_exercice(exercice: ExerciceEntry) -> str:
    return (f"[{_plain(exercice.fields)}, [{', '.join(map(_plain, exercice.savoir_faire))}], "
            f"[{', '.join(map(_plain, exercice.activities))}]]")


@dataclass
class Rejected:
    """The lines of one practitioner (or one unidentifiable line), each with its reason."""

    id_nat: str
    reasons: dict[int, str]


def build(id_nat: str, lines: list, layout: Layout, test_ids: bool) -> Entry | Rejected:
    """The entry of ``id_nat`` from its ``(number, text, fields)`` lines."""
    reasons, entry = {}, None
    for number, text, fields in lines:
        reason = _line_error(text, fields, layout, id_nat)
        if reason is not None:
            reasons[number] = reason
            continue
        person = layout.person(fields)
        other_ids = fields[layout.other_ids_at] if layout.other_ids_at is not None else ""
        if entry is None:
            entry = Entry(id_nat, person, [], layout, other_ids, plain=True)
            entry.warnings.extend((number, message) for message in _identity(entry, test_ids))
        elif person != entry.person or other_ids != entry.other_ids:
            entry.warnings.append((number, _person_differs(entry, person, other_ids)))
        if entry.plain and not plain(text):
            entry.plain = False
        entry.add(fields)
        entry.lines.append(number)
    if not reasons:
        return entry
    first_bad = min(reasons)
    for number, _, _ in lines:
        reasons.setdefault(number, f"rejected with practitioner {id_nat} (see line "
                                   f"{first_bad})")
    return Rejected(id_nat, dict(sorted(reasons.items())))


def plain(text: str) -> bool:
    """Whether JSON writes ``text`` as it is (between quotes): no ``"``, no ``\\``, no
    control character (nor any other non-printable character, to be quick)."""
    return '"' not in text and "\\" not in text and text.isprintable()


def _identity(entry: Entry, test_ids: bool) -> list[str]:
    person, layout = entry.person, entry.layout
    return identity_warnings(person[layout.at("id_type")], person[layout.at("identifier")],
                             entry.id_nat, test_ids=test_ids)


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
