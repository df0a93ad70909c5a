"""Import of directory extracts into the database (psc.md §8). The file is streamed and
written in batches of practitioners, one transaction per batch: a practitioner is always
replaced as a whole (or not at all), logins keep working during an import, and importing
the same file again changes nothing. With ``full=True`` the file is the complete national
extract: practitioners absent from it are deactivated (they can no longer log in)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import bindparam, delete, insert, or_, select, true, update
from sqlalchemy.exc import SQLAlchemyError

from .. import audit
from ..extensions import db
from .extract import (
    ACTIVITY,
    DEFAULT_GENRE_ACTIVITE,
    EXERCICE,
    PERSON,
    SAVOIR_FAIRE,
    Entry,
    Rejected,
    entries,
    open_extract,
)
from .models import Activity, DirectoryImport, Exercice, Practitioner, SavoirFaire

BATCH_SIZE = 500
#: rejected lines listed in a report (all are counted)
MAX_LISTED = 10_000

_P = Practitioner.__table__


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    source: str = ""


@dataclass
class ImportReport:
    """What an import did: lines read, practitioners by outcome, rejected lines."""

    source: str
    lines: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected_practitioners: int = 0
    rejected_lines: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected_lines == 0

    def reject(self, rejected: Rejected) -> None:
        self.rejected_practitioners += 1
        self.rejected_lines += len(rejected.reasons)
        room = MAX_LISTED - len(self.rejections)
        self.rejections.extend(Rejection(line, reason, self.source)
                               for line, reason in list(rejected.reasons.items())[:room])

    def summary(self) -> str:
        text = (f"{self.lines} lines, practitioners: {self.imported} imported, "
                f"{self.updated} updated, {self.unchanged} unchanged")
        if self.deactivated:
            text += f", {self.deactivated} deactivated"
        return text + f"; {self.rejected_lines} lines rejected"

    @classmethod
    def merge(cls, reports: list[ImportReport]) -> ImportReport:
        total = cls(", ".join(r.source for r in reports))
        for report in reports:
            for name in ("lines", "imported", "updated", "unchanged", "deactivated",
                         "rejected_practitioners", "rejected_lines"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.rejections.extend(report.rejections)
        return total


def import_files(paths: Iterable[Path], *, full: bool = False) -> ImportReport:
    """Import each file in turn; ExtractError if one cannot be read as an extract."""
    return ImportReport.merge([import_file(Path(p), full=full) for p in paths])


def import_file(path: Path, *, full: bool = False, batch_size: int = BATCH_SIZE) -> ImportReport:
    """Import one extract; ExtractError (nothing written) if it is unreadable or not an
    extract. Lines that are wrong are rejected and listed in the report."""
    report = ImportReport(str(path))
    with open_extract(Path(path)) as lines:
        run = DirectoryImport(source=str(path), full=full, started_at=int(time.time()))
        db.session.add(run)
        db.session.commit()
        for batch in _batches(entries(_counted(lines, report)), batch_size):
            _import_batch(batch, run.id, report)
    if full:
        report.deactivated = _deactivate_absent(run.id)
    _finish(run, report)
    return report


def _counted(lines: Iterator, report: ImportReport) -> Iterator:
    for line in lines:
        report.lines += 1
        yield line


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _Plan:
    new: list[Entry] = field(default_factory=list)
    changed: list[Entry] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # rejected, kept as they were


def _import_batch(batch: list[Entry | Rejected], run_id: int, report: ImportReport) -> None:
    plan = _plan(batch, run_id, report)
    try:
        _write(plan, run_id)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        _write_one_by_one(plan, run_id, report)
        return
    report.imported += len(plan.new)
    report.updated += len(plan.changed)
    report.unchanged += len(plan.unchanged)


def _plan(batch: list[Entry | Rejected], run_id: int, report: ImportReport) -> _Plan:
    """Sort the batch by outcome with one query on the practitioners already stored."""
    ids = [item.id_nat for item in batch if item.id_nat]
    stored = {row.id_nat: row for row in db.session.execute(
        select(_P.c.id_nat, _P.c.digest, _P.c.active, _P.c.last_import_id)
        .where(_P.c.id_nat.in_(ids)))}
    plan, in_batch = _Plan(), set()
    for item in batch:
        row = stored.get(item.id_nat)
        again = item.id_nat in in_batch or (row is not None and row.last_import_id == run_id)
        if isinstance(item, Entry) and again:
            item = Rejected(item.id_nat, {line: (
                f"practitioner {item.id_nat} already read earlier in this file (the lines "
                "of a practitioner must follow each other)") for line in item.lines})
        if isinstance(item, Rejected):
            report.reject(item)
            if row is not None and not again:
                plan.seen.append(item.id_nat)
        elif row is None:
            plan.new.append(item)
        elif row.digest != item.digest or not row.active:
            plan.changed.append(item)
        else:
            plan.unchanged.append(item.id_nat)
        in_batch.add(item.id_nat)
    return plan


def _write(plan: _Plan, run_id: int) -> None:
    now = int(time.time())
    changed = [entry.id_nat for entry in plan.changed]
    if changed:
        for model in (Activity, SavoirFaire, Exercice):
            db.session.execute(delete(model.__table__)
                               .where(model.__table__.c.id_nat.in_(changed)))
        db.session.execute(
            update(_P).where(_P.c.id_nat == bindparam("key")),
            [{"key": e.id_nat, **_practitioner_row(e, run_id, now)} for e in plan.changed])
    if plan.new:
        db.session.execute(insert(_P), [
            {"id_nat": e.id_nat, "created_at": now, **_practitioner_row(e, run_id, now)}
            for e in plan.new])
    _insert_children(plan.new + plan.changed)
    touched = plan.unchanged + plan.seen
    if touched:
        db.session.execute(update(_P).where(_P.c.id_nat.in_(touched))
                           .values(last_import_id=run_id))


def _practitioner_row(entry: Entry, run_id: int, now: int) -> dict:
    return {**dict(zip(PERSON, entry.person, strict=True)), "active": True,
            "digest": entry.digest, "last_import_id": run_id, "updated_at": now}


def _insert_children(written: list[Entry]) -> None:
    exercices, savoir_faire, activities = [], [], []
    for entry in written:
        for rank, exercice in enumerate(entry.exercices.values()):
            key = {"id_nat": entry.id_nat, "exercice_rank": rank}
            exercices.append({"id_nat": entry.id_nat, "rank": rank,
                              **dict(zip(EXERCICE, exercice.fields, strict=True))})
            savoir_faire.extend({**key, "rank": i, **dict(zip(SAVOIR_FAIRE, values,
                                                              strict=True))}
                                for i, values in enumerate(exercice.savoir_faire))
            activities.extend({**key, "rank": i, "genre_activite": DEFAULT_GENRE_ACTIVITE,
                               **dict(zip(ACTIVITY, values, strict=True))}
                              for i, values in enumerate(exercice.activities))
    for model, rows in ((Exercice, exercices), (SavoirFaire, savoir_faire),
                        (Activity, activities)):
        if rows:
            db.session.execute(insert(model.__table__), rows)


def _write_one_by_one(plan: _Plan, run_id: int, report: ImportReport) -> None:
    """After a batch failed: write each practitioner in its own transaction, so that only
    the ones the database refuses are rejected."""
    written = [("new", e) for e in plan.new] + [("changed", e) for e in plan.changed]
    for kind, entry in sorted(written, key=lambda item: item[1].lines[0]):
        try:
            _write(_Plan(**{kind: [entry]}), run_id)
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            reason = f"refused by the database: {_first_line(exc)}"
            report.reject(Rejected(entry.id_nat, dict.fromkeys(entry.lines, reason)))
            continue
        if kind == "new":
            report.imported += 1
        else:
            report.updated += 1
    _write(_Plan(unchanged=plan.unchanged, seen=plan.seen), run_id)
    db.session.commit()
    report.unchanged += len(plan.unchanged)


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def _deactivate_absent(run_id: int) -> int:
    """Deactivate the active practitioners this import did not see (full extracts)."""
    result = db.session.execute(
        update(_P).where(_P.c.active == true(),
                         or_(_P.c.last_import_id.is_(None), _P.c.last_import_id != run_id))
        .values(active=False, updated_at=int(time.time())))
    db.session.commit()
    return result.rowcount


def _finish(run: DirectoryImport, report: ImportReport) -> None:
    for name in ("lines", "imported", "updated", "unchanged", "deactivated",
                 "rejected_lines"):
        setattr(run, name, getattr(report, name))
    run.finished_at = int(time.time())
    audit.record("directory.imported", source=report.source, full=run.full,
                 lines=report.lines, imported=report.imported, updated=report.updated,
                 unchanged=report.unchanged, deactivated=report.deactivated,
                 rejected_lines=report.rejected_lines)
    db.session.commit()
