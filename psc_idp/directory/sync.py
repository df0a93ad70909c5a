"""``directory sync``: apply a new complete national extract as a difference (psc.md §8) —
creations, updates, then deactivation of the practitioners who disappeared, on top of the
importer's streamed batches (each practitioner replaced in one transaction).

- Deactivation comes last, only once the whole file was applied, and is refused when it
  would remove more than ``directory_sync_max_deactivated_percent`` of the active
  practitioners (a truncated or wrong file), unless forced. Absent former idNats that a
  practitioner of the file lists as theirs are linked to them (``links``), not counted.
- Resumable: each batch commits the line it reached; a sync of the same file (same
  SHA-256) after an interruption continues from there, with the figures so far.
- Dry run (``dry_run.py``): the same plan; nothing of the directory is written.

Memory is bounded by the batch size whatever the size of the file."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from .. import audit
from ..extensions import db
from ..settings import current as settings
from .deactivation import count_absent, count_active, deactivate_absent
from .extract import ExtractError, open_extract
from .importer import BATCH_SIZE, Progress, apply_lines, finish, start_run
from .links import count_linkable, link_absent
from .models import DirectoryImport
from .report import FIGURES, ImportReport


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
              batch_size: int = BATCH_SIZE, test_ids: bool | None = None,
              progress: Progress | None = None) -> SyncReport:
    """Apply the complete extract ``path``, resuming an interrupted sync of the same file.
    ExtractError if the file cannot be read (nobody deactivated); TooManyDeactivations
    (left resumable) if the safeguard refuses."""
    path = Path(path)
    digest = file_sha256(path)
    report = SyncReport(str(path))
    with open_extract(path) as extract:
        run_id = _start_or_resume(path, digest, report)
        if report.resumed_after is None:
            report.header(extract.layout)
        run = db.session.get(DirectoryImport, run_id)
        if run.read_at is None:
            after = report.resumed_after or 0
            if progress is not None:
                progress(after)
            apply_lines(extract, ((n, text) for n, text in extract.lines if n > after),
                        run_id, report, batch_size, test_ids=test_ids, progress=progress)
            db.session.execute(update(DirectoryImport).where(DirectoryImport.id == run_id)
                               .values(read_at=int(time.time())))
            db.session.commit()
    _safeguard(run_id, report, digest, force, limit_percent() if limit is None else limit)
    report.linked += link_absent(run_id)
    report.deactivated += deactivate_absent(run_id)
    finish(run_id, report, full=True, event="directory.synced", sha256=digest,
           resumed_after=report.resumed_after)
    return report


def _start_or_resume(path: Path, digest: str, report: SyncReport) -> int:
    run = _resumable(digest)
    if run is None:
        return start_run(path, full=True, file_sha256=digest)
    report.resumed_after = run.checkpoint_line
    for name in FIGURES:
        setattr(report, name, getattr(run, name))
    return run.id


def _safeguard(run_id: int, report: SyncReport, digest: str, force: bool, limit: int) -> None:
    """Raise TooManyDeactivations if the absent (but the linked) are too many."""
    absent = count_absent(run_id) - count_linkable(run_id)
    report.active = count_active()
    if force or 100 * (absent + report.deactivated) <= limit * (report.active
                                                                 + report.deactivated):
        return
    audit.record("directory.synced", "failure", source=report.source, sha256=digest,
                 reason="too_many_deactivations", absent=absent, active=report.active,
                 limit_percent=limit)
    db.session.commit()
    raise TooManyDeactivations(report, absent, limit)


def limit_percent() -> int:
    return settings().directory_sync_max_deactivated_percent



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
