"""Import of directory extracts into the database (psc.md §8). The file is streamed and
written in batches of practitioners, one transaction per batch: a practitioner is always
replaced as a whole (or not at all), logins keep working during an import, and importing
the same file again changes nothing. With ``full=True`` the file is the complete national
extract: practitioners absent from it are deactivated (``deactivation``). Each batch commits
a checkpoint with it, which ``sync`` uses to resume an interrupted run."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .. import audit
from ..extensions import db
from .deactivation import deactivate_absent
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
_RUN = DirectoryImport.__table__
#: the figures an import keeps in its ``directory_import`` row
FIGURES = ("lines", "imported", "updated", "unchanged", "deactivated", "rejected_lines")


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
        run_id = start_run(path, full=full)
        apply_lines(lines, run_id, report, batch_size)
    if full:
        report.deactivated = deactivate_absent(run_id)
    finish(run_id, report, full=full)
    return report


def start_run(path: Path, *, full: bool, file_sha256: str | None = None) -> int:
    run = DirectoryImport(source=str(path), full=full, started_at=int(time.time()),
                          file_sha256=file_sha256)
    db.session.add(run)
    db.session.commit()
    return run.id


def apply_lines(lines: Iterator[tuple[int, str]], run_id: int, report: ImportReport,
                batch_size: int = BATCH_SIZE) -> None:
    """Write the practitioners of ``lines``, one transaction per batch, each with the run's
    checkpoint (its last line) and figures."""
    for batch in batches(entries(lines), batch_size):
        _import_batch(batch, run_id, report)


def batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def line_numbers(item: Entry | Rejected) -> list[int]:
    return item.lines if isinstance(item, Entry) else list(item.reasons)


@dataclass(frozen=True)
class Stored:
    """What a batch needs to know of a practitioner already stored; ``seen``: this run
    already read them (their lines must follow each other)."""

    digest: str | None
    active: bool
    seen: bool


@dataclass
class Plan:
    new: list[Entry] = field(default_factory=list)
    changed: list[Entry] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # rejected, kept as they were

    def marked(self) -> list[str]:
        """The practitioners the run has now seen (none of them is absent)."""
        return [e.id_nat for e in self.new + self.changed] + self.unchanged + self.seen


def _import_batch(batch: list[Entry | Rejected], run_id: int, report: ImportReport) -> None:
    ids = [item.id_nat for item in batch if item.id_nat]
    query = select(_P.c.id_nat, _P.c.digest, _P.c.active, _P.c.last_import_id).where(
        _P.c.id_nat.in_(ids))
    stored = {row.id_nat: Stored(row.digest, row.active, row.last_import_id == run_id)
              for row in db.session.execute(query)}
    plan = plan_batch(batch, stored, report)
    try:
        _write(plan, run_id)
        written = len(plan.new), len(plan.changed)
    except SQLAlchemyError:
        db.session.rollback()
        written = _write_one_by_one(plan, run_id, report)
    report.imported += written[0]
    report.updated += written[1]
    report.unchanged += len(plan.unchanged)
    report.lines += sum(len(line_numbers(item)) for item in batch)
    checkpoint(run_id, report, max(line_numbers(batch[-1])))
    db.session.commit()


def plan_batch(batch: list[Entry | Rejected], stored: dict[str, Stored],
               report: ImportReport) -> Plan:
    """Sort the batch by outcome, given what is ``stored`` of its practitioners; count the
    rejected in ``report``."""
    plan, in_batch = Plan(), set()
    for item in batch:
        row = stored.get(item.id_nat)
        again = item.id_nat in in_batch or (row is not None and row.seen)
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


def checkpoint(run_id: int, report: ImportReport, line: int | None = None) -> None:
    values = {name: getattr(report, name) for name in FIGURES}
    if line is not None:
        values["checkpoint_line"] = line
    db.session.execute(update(_RUN).where(_RUN.c.id == run_id).values(**values))


def _write(plan: Plan, run_id: int) -> None:
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
        insert_rows(_P, [{"id_nat": e.id_nat, "created_at": now,
                      **_practitioner_row(e, run_id, now)} for e in plan.new])
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
        insert_rows(model.__table__, rows)


def insert_rows(table: Table, rows: list[dict], connection: Connection | None = None) -> None:
    """Insert ``rows`` (all with the same keys), on the session's connection by default.
    On PostgreSQL through COPY: one round trip instead of one per row, in the same
    transaction."""
    if not rows:
        return
    connection = connection or db.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    columns = list(rows[0])
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    dbapi_error = connection.dialect.loaded_dbapi.Error
    with connection.connection.cursor() as cursor:
        try:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row([row[name] for name in columns])
        except dbapi_error as exc:  # as SQLAlchemy would raise it
            raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc


def _write_one_by_one(plan: Plan, run_id: int, report: ImportReport) -> tuple[int, int]:
    """After a batch failed: write each practitioner under its own savepoint, so that only
    the ones the database refuses are rejected; the batch still commits as one, with its
    checkpoint. Returns how many were created and updated."""
    _write(Plan(unchanged=plan.unchanged, seen=plan.seen), run_id)
    # a first statement opens the transaction: with SQLite's driver, a SAVEPOINT would
    # open it instead, and releasing that savepoint would commit it
    checkpoint(run_id, report)
    written = {"new": 0, "changed": 0}
    for kind, entry in sorted([("new", e) for e in plan.new] +
                              [("changed", e) for e in plan.changed],
                              key=lambda item: item[1].lines[0]):
        try:
            with db.session.begin_nested():
                _write(Plan(**{kind: [entry]}), run_id)
        except SQLAlchemyError as exc:
            reason = f"refused by the database: {_first_line(exc)}"
            report.reject(Rejected(entry.id_nat, dict.fromkeys(entry.lines, reason)))
            continue
        written[kind] += 1
    return written["new"], written["changed"]


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def finish(run_id: int, report: ImportReport, *, full: bool, event: str = "directory.imported",
           **detail) -> None:
    """Close the run with its figures, and its audit record."""
    checkpoint(run_id, report)
    db.session.execute(update(_RUN).where(_RUN.c.id == run_id)
                       .values(finished_at=int(time.time())))
    audit.record(event, source=report.source, full=full,
                 **{name: getattr(report, name) for name in FIGURES}, **detail)
    db.session.commit()
