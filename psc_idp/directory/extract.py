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
identifiants`` form one block, grouped by idNat (``entry.py`` builds each practitioner).
Memory is bounded by one block."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .entry import Entry, ExerciceEntry, Rejected, build
from .identifiers import parse_other_ids
from .layout import NOT_AN_EXTRACT, ExtractError, Layout, layout_of

__all__ = ["Entry", "ExerciceEntry", "Extract", "ExtractError", "Rejected", "blocks", "entries",
           "open_extract"]

#: the genre d'activité of activities whose file has no such column or value (TRE_R22
#: "Activité de soin et de pharmacie", what PSC sends, psc.md §3)
DEFAULT_GENRE_ACTIVITE = "GENR01"
#: lines kept together as one person's block, at most (a longer run is cut there)
MAX_BLOCK = 10_000
_SPACES = str.maketrans({"\xa0": " ", "\u202f": " ", "\u2007": " "})


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
    try:
        for number, text in enumerate(stream, 2):
            text = text.rstrip("\r\n")
            if text and not text.isspace():
                yield number, text
    except OSError as exc:
        raise ExtractError(f"{path}: read error at line {number + 1}: {exc.strerror}") from exc


def _split(text: str, width: int) -> list[str]:
    """The fields of a line, stripped of (non-breaking) spaces; the trailing ``|`` of the
    extract ends the last field."""
    if "\xa0" in text or "\u202f" in text or "\u2007" in text:
        text = text.translate(_SPACES)
    fields = text.split("|")
    if _padded(text):
        fields = [value.strip() for value in fields]
    if len(fields) > width and fields[-1] == "":
        fields.pop()
    return fields


def _padded(text: str) -> bool:
    """Whether a field of ``text`` may start or end with white space (what ``str.strip``
    removes): the only printable one is the space, so a printable line without a space
    next to a ``|`` or at an end has none."""
    return not text.isprintable() or " |" in text or "| " in text or \
        text.startswith(" ") or text.endswith(" ")


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
        yield [build(id_nat, group, layout, test_ids) for id_nat, group in groups.items()]


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
