"""Import of directory extracts into the database (psc.md §8). The file is streamed and
written in batches of practitioners, one transaction per batch: a practitioner is always
replaced as a whole (or not at all), logins keep working during an import, and importing
the same file again changes nothing. With ``full=True`` the file is the complete national
extract: the absent former identifiers a practitioner now lists are linked to them
(``links``), the other absent practitioners are deactivated (``deactivation``). Each batch
commits a checkpoint with it, which ``sync`` uses to resume an interrupted run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flask import has_app_context
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from .. import audit
from ..extensions import db
from ..settings import current as settings
from .deactivation import deactivate_absent
from .extract import Entry, Extract, Rejected, blocks, open_extract
from .links import link_absent
from .models import DirectoryImport, Practitioner
from .readahead import read_ahead
from .report import FIGURES, ImportReport
from .writer import among, write

__all__ = ["BATCH_SIZE", "FIGURES", "ImportReport", "import_file", "import_files"]

BATCH_SIZE = 2000
#: the CLI's progress line: told the line the run starts after (0, or where a resumed sync
#: goes on), then the last line written after each batch
Progress = Callable[[int], None]

_P = Practitioner.__table__
_RUN = DirectoryImport.__table__


def import_files(paths: Iterable[Path], *, full: bool = False) -> ImportReport:
    """Import each file in turn; ExtractError if one cannot be read as an extract."""
    return ImportReport.merge([import_file(Path(p), full=full) for p in paths])


def import_file(path: Path, *, full: bool = False, batch_size: int = BATCH_SIZE,
                test_ids: bool | None = None, progress: Progress | None = None
                ) -> ImportReport:
    """Import one extract; ExtractError (nothing written) if it is unreadable or not an
    extract. Unusable lines are rejected, doubtful ones imported with a warning, both
    listed in the report. ``test_ids``: warn about sandbox test identities (default: in
    production mode); ``progress``: called with the last line written, batch by batch."""
    report = ImportReport(str(path))
    with open_extract(Path(path)) as extract:
        run_id = start_run(path, full=full)
        report.header(extract.layout)
        if progress is not None:
            progress(0)
        apply_lines(extract, extract.lines, run_id, report, batch_size, test_ids=test_ids,
                    progress=progress)
    if full:
        report.linked = link_absent(run_id)
        report.deactivated = deactivate_absent(run_id)
    finish(run_id, report, full=full)
    return report


def production() -> bool:
    """Whether the app runs in production mode (sandbox identities are then suspicious)."""
    return has_app_context() and \
        settings().mode == "production"


def start_run(path: Path, *, full: bool, file_sha256: str | None = None) -> int:
    run = DirectoryImport(source=str(path), full=full, started_at=int(time.time()),
                          file_sha256=file_sha256)
    db.session.add(run)
    db.session.commit()
    return run.id


def apply_lines(extract: Extract, lines: Iterator[tuple[int, str]], run_id: int,
                report: ImportReport, batch_size: int = BATCH_SIZE, *,
                test_ids: bool | None = None, progress: Progress | None = None) -> None:
    """Write the practitioners of ``lines`` (of ``extract``), one transaction per batch,
    each with the run's checkpoint (its last line) and figures; the next batches are
    parsed meanwhile (``read_ahead``)."""
    test_ids = production() if test_ids is None else test_ids
    parsed = batches(blocks(lines, extract.layout, test_ids=test_ids), batch_size)
    with read_ahead(parsed) as ready:
        for batch in ready:
            _import_batch(batch, run_id, report)
            if progress is not None:
                progress(last_line(batch))


def batches(items: Iterator[list], size: int) -> Iterator[list]:
    """Blocks of entries gathered into batches of about ``size`` entries; a block is never
    split, so a checkpoint (the batch's last line) never falls inside one."""
    batch = []
    for block in items:
        batch.extend(block)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def line_numbers(item: Entry | Rejected) -> list[int]:
    return item.lines if isinstance(item, Entry) else list(item.reasons)


def last_line(batch: list[Entry | Rejected]) -> int:
    return max(max(line_numbers(item)) for item in batch)


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
        among(db.session.connection(), _P.c.id_nat, ids))
    stored = {row.id_nat: Stored(row.digest, row.active, row.last_import_id == run_id)
              for row in db.session.execute(query)}
    plan = plan_batch(batch, stored, report)
    try:
        write(plan.new, plan.changed, plan.unchanged + plan.seen, run_id)
        written = len(plan.new), len(plan.changed)
    except SQLAlchemyError:
        db.session.rollback()
        written = _write_one_by_one(plan, run_id, report)
    report.imported += written[0]
    report.updated += written[1]
    report.unchanged += len(plan.unchanged)
    report.lines += sum(len(line_numbers(item)) for item in batch)
    checkpoint(run_id, report, last_line(batch))
    db.session.commit()


def plan_batch(batch: list[Entry | Rejected], stored: dict[str, Stored],
               report: ImportReport) -> Plan:
    """Sort the batch by outcome, given what is ``stored`` of its practitioners; count the
    rejected and the warnings in ``report``."""
    plan, in_batch = Plan(), set()
    for item in batch:
        row = stored.get(item.id_nat)
        again = item.id_nat in in_batch or (row is not None and row.seen)
        if isinstance(item, Entry) and again:
            item = Rejected(item.id_nat, {line: (
                f"practitioner {item.id_nat} already read earlier in this file (the lines "
                "of a practitioner must follow each other)") for line in item.lines})
        report.entry(item)
        if isinstance(item, Rejected):
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


def _write_one_by_one(plan: Plan, run_id: int, report: ImportReport) -> tuple[int, int]:
    """After a batch failed: write each practitioner under its own savepoint, so that only
    the ones the database refuses are rejected; the batch still commits as one, with its
    checkpoint. Returns how many were created and updated."""
    write([], [], plan.unchanged + plan.seen, run_id)
    # a first statement opens the transaction: with SQLite's driver, a SAVEPOINT would
    # open it instead, and releasing that savepoint would commit it
    checkpoint(run_id, report)
    written = {"new": 0, "changed": 0}
    for kind, entry in sorted([("new", e) for e in plan.new] +
                              [("changed", e) for e in plan.changed],
                              key=lambda item: item[1].lines[0]):
        try:
            with db.session.begin_nested():
                write(*(([entry], []) if kind == "new" else ([], [entry])), [], run_id)
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
