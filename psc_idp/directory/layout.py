"""Where each column is in one extract file: its header line matched against the column
table (``columns.py``), once per file, into getters that pick a part of a line.

A required column missing, or a column named twice, makes the file unusable (one-line
``ExtractError``); a header name that matches no column is reported once and ignored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

from .columns import (
    ACTIVITY,
    BY_KEY,
    COLUMNS,
    EXERCICE,
    KEY,
    PERSON,
    SAVOIR_FAIRE,
    Column,
    header_key,
)

NOT_AN_EXTRACT = "not a directory extract (Extraction_ProSanteConnect_Personne_activite)"


class ExtractError(Exception):
    """The file cannot be read as a directory extract; the message names file and cause."""


@dataclass(frozen=True)
class Layout:
    """The columns of one file. ``person``, ``exercice``, ``savoir_faire`` and ``activity``
    pick their part of a line's fields as a tuple of the attributes named in ``*_attrs``
    (table order, only the columns the file has)."""

    width: int
    id_nat_at: int
    other_ids_at: int | None
    unknown: tuple[tuple[int, str], ...]
    person_attrs: tuple[str, ...]
    exercice_attrs: tuple[str, ...]
    savoir_faire_attrs: tuple[str, ...]
    activity_attrs: tuple[str, ...]
    person: Callable[[list[str]], tuple[str, ...]]
    exercice: Callable[[list[str]], tuple[str, ...]]
    savoir_faire: Callable[[list[str]], tuple[str, ...]]
    activity: Callable[[list[str]], tuple[str, ...]]

    def at(self, attribute: str) -> int | None:
        """Index of a person attribute in ``person(fields)``."""
        return self.person_attrs.index(attribute) if attribute in self.person_attrs else None


def layout_of(path, names: list[str]) -> Layout:
    """The layout of a header's ``names``; ExtractError if it is not an extract's."""
    found: dict[Column, int] = {}
    unknown = []
    for index, name in enumerate(names):
        column = BY_KEY.get(header_key(name))
        if column is None:
            unknown.append((index + 1, name.strip()))
        elif column in found:
            raise ExtractError(f"{path}: header column {index + 1} repeats '{name.strip()}' "
                               f"(column {found[column] + 1})")
        else:
            found[column] = index
    _check_required(path, found)
    parts = {name: [c for c in COLUMNS if c.part == name and c in found]
             for name in (PERSON, EXERCICE, SAVOIR_FAIRE, ACTIVITY)}
    person = [c for c in parts[PERSON] if c.attribute != "other_ids"]
    other_ids = next((i for c, i in found.items() if c.attribute == "other_ids"), None)
    return Layout(
        width=len(names), id_nat_at=next(i for c, i in found.items() if c.part == KEY),
        other_ids_at=other_ids, unknown=tuple(unknown),
        person_attrs=_attrs(person), exercice_attrs=_attrs(parts[EXERCICE]),
        savoir_faire_attrs=_attrs(parts[SAVOIR_FAIRE]),
        activity_attrs=_attrs(parts[ACTIVITY]),
        person=_getter(person, found), exercice=_getter(parts[EXERCICE], found),
        savoir_faire=_getter(parts[SAVOIR_FAIRE], found),
        activity=_getter(parts[ACTIVITY], found))


def _check_required(path, found: dict[Column, int]) -> None:
    missing = [c.header for c in COLUMNS if c.required and c not in found]
    if missing:
        shown = ", ".join(f"'{name}'" for name in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ExtractError(f"{path}: {NOT_AN_EXTRACT}: the header lacks {len(missing)} "
                           f"required column(s): {shown}{more}")


def _attrs(columns: list[Column]) -> tuple[str, ...]:
    return tuple(c.attribute for c in columns)


def _getter(columns: list[Column], found: dict[Column, int]):
    """A function returning the fields of ``columns`` as a tuple (even for one column)."""
    indexes = [found[c] for c in columns]
    if len(indexes) == 1:
        only = indexes[0]
        return lambda fields: (fields[only],)
    return itemgetter(*indexes)
