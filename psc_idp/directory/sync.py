"""``directory sync``: apply a new complete national extract as a difference (psc.md §8) —
creations, updates, then deactivation of the practitioners who disappeared, on top of the
importer's streamed batches (each practitioner replaced in one transaction).

- Deactivation comes last, only once the whole file was applied, and is refused when it
  would remove more than ``directory_sync_max_deactivated_percent`` of the active
  practitioners (a truncated or wrong file), unless forced.
- Resumable: each batch commits the line it reached; a sync of the same file (same
  SHA-256) after an interruption continues from there, with the figures so far.
- Dry run: the same plan, batch by batch, with the practitioners seen kept in a temporary
  table of its own connection; nothing of the directory is written.

Memory is bounded by the batch size whatever the size of the file."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import Column, MetaData, String, Table, func, select, true, update

from .. import audit
from ..extensions import db
from .deactivation import count_absent, count_active, deactivate_absent
from .extract import ExtractError, entries, open_extract
from .importer import (
    BATCH_SIZE,
    FIGURES,
    ImportReport,
    Stored,
    apply_lines,
    batches,
    finish,
    insert_rows,
    line_numbers,
    plan_batch,
    start_run,
)
from .models import DirectoryImport, Practitioner

_P = Practitioner.__table__


@dataclass
class SyncReport(ImportReport):
    #: the line an interrupted run had reached, when this one resumed it
    resumed_after: int | None = None
    #: active practitioners before the deactivations
    active: int = 0


class TooManyDeactivations(Exception):
    """The safeguard: the sync would deactivate more than the allowed share."""

    def __init__(self, report: SyncReport, absent: int, limit: int):
        self.report, self.absent, self.limit = report, absent, limit
        share = 100 * absent / max(report.active, 1)
        super().__init__(
            f"{report.source}: would deactivate {absent} of {report.active} active "
            f"practitioners ({share:.1f} %, more than directory_sync_max_deactivated_percent"
            f" = {limit} %); nobody was deactivated (creations and updates are applied). "
            "Check the file, then run the sync again with --force")


def sync_file(path: Path, *, force: bool = False, limit: int | None = None,
              batch_size: int = BATCH_SIZE) -> SyncReport:
    """Apply the complete extract ``path``, resuming an interrupted sync of the same file.
    ExtractError if the file cannot be read (nobody deactivated); TooManyDeactivations
    (left resumable) if the safeguard refuses."""
    path = Path(path)
    digest = file_sha256(path)
    report = SyncReport(str(path))
    with open_extract(path) as lines:
        run = _resumable(digest)
        if run is None:
            run_id = start_run(path, full=True, file_sha256=digest)
        else:
            run_id, report.resumed_after = run.id, run.checkpoint_line
            for name in FIGURES:
                setattr(report, name, getattr(run, name))
        if run is None or run.read_at is None:
            apply_lines(((n, text) for n, text in lines if n > (report.resumed_after or 0)),
                        run_id, report, batch_size)
            db.session.execute(update(DirectoryImport).where(DirectoryImport.id == run_id)
                               .values(read_at=int(time.time())))
            db.session.commit()
    absent = count_absent(run_id)
    report.active = count_active()
    limit = _limit() if limit is None else limit
    if not force and 100 * (absent + report.deactivated) > limit * (report.active
                                                                     + report.deactivated):
        audit.record("directory.synced", "failure", source=report.source, sha256=digest,
                     reason="too_many_deactivations", absent=absent, active=report.active,
                     limit_percent=limit)
        db.session.commit()
        raise TooManyDeactivations(report, absent, limit)
    report.deactivated += deactivate_absent(run_id)
    finish(run_id, report, full=True, event="directory.synced", sha256=digest,
           resumed_after=report.resumed_after)
    return report


def _limit() -> int:
    return current_app.extensions["psc_idp"].settings["directory_sync_max_deactivated_percent"]


def _resumable(digest: str) -> DirectoryImport | None:
    """The last run, if it is an unfinished sync of this very file."""
    last = db.session.scalars(select(DirectoryImport).order_by(DirectoryImport.id.desc())
                              .limit(1)).first()
    if last and last.finished_at is None and last.full and last.file_sha256 == digest:
        return last
    return None


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                sha.update(chunk)
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc.strerror}") from exc
    return sha.hexdigest()


def dry_run(path: Path, *, limit: int | None = None, batch_size: int = BATCH_SIZE
            ) -> tuple[SyncReport, bool]:
    """What ``sync_file`` would do, and whether the safeguard would let it deactivate;
    writes nothing to the directory."""
    report = SyncReport(str(path))
    seen = Table("directory_dry_run_seen", MetaData(), Column("id_nat", String(40),
                 primary_key=True), prefixes=["TEMPORARY"])
    with open_extract(Path(path)) as lines, db.engine.connect() as conn:
        seen.create(conn)
        conn.commit()
        try:
            for batch in batches(entries(lines), batch_size):
                plan = plan_batch(batch, _stored(conn, seen, batch), report)
                report.lines += sum(len(line_numbers(item)) for item in batch)
                report.imported += len(plan.new)
                report.updated += len(plan.changed)
                report.unchanged += len(plan.unchanged)
                insert_rows(seen, [{"id_nat": id_nat} for id_nat in plan.marked()], conn)
                conn.commit()
            active = _P.c.active == true()
            report.active = conn.scalar(select(func.count()).where(active))
            report.deactivated = conn.scalar(select(func.count()).where(
                active, _P.c.id_nat.not_in(select(seen.c.id_nat))))
        finally:
            conn.rollback()
            seen.drop(conn)
            conn.commit()
    limit = _limit() if limit is None else limit
    return report, 100 * report.deactivated <= limit * report.active


def _stored(conn, seen: Table, batch: list) -> dict[str, Stored]:
    ids = [item.id_nat for item in batch if item.id_nat]
    earlier = set(conn.scalars(select(seen.c.id_nat).where(seen.c.id_nat.in_(ids))))
    stored = {row.id_nat: Stored(row.digest, row.active, row.id_nat in earlier)
              for row in conn.execute(select(_P.c.id_nat, _P.c.digest, _P.c.active)
                                      .where(_P.c.id_nat.in_(ids)))}
    for id_nat in earlier - set(stored):  # new practitioners read earlier in the file
        stored[id_nat] = Stored(None, False, True)
    return stored
