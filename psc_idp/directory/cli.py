"""``psc-idp directory import FILE…`` and ``directory sync FILE``: load national directory
extracts (psc.md §8); ``directory rebuild-claims``: build the stored claims again.

Each file gets a summary line, then its rejected lines and its warnings (lines imported
anyway, psc.md §10). Exit status: 0 every line was imported (with or without warnings);
1 some lines were rejected (listed); 2 a file could not be imported at all (unreadable, not
an extract, database unavailable); 3 (sync) the deactivations were refused by the
safeguard."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from ..cli_support import error

OK, REJECTED_LINES, FAILED, REFUSED = 0, 1, 2, 3


@click.group("directory", help="The practitioner directory (national RPPS/ADELI extract).")
def directory():
    pass


@directory.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--full", is_flag=True,
              help="FILE is the complete national extract: deactivate the practitioners "
                   "absent from it.")
@with_appcontext
def import_cmd(files: tuple[Path, ...], full: bool):
    """Import directory extracts (Extraction_ProSanteConnect_Personne_activite_*.txt).

    Prints one summary line per file, then its rejected lines and its warnings; on a
    terminal, stderr shows the progress (lines/s, time left). Exit status: 0 all lines
    imported (warnings do not count), 1 some lines rejected, 2 a file could not be
    imported."""
    if full and len(files) != 1:
        raise click.UsageError("--full takes exactly one FILE (the complete extract)")
    click.get_current_context().exit(max([_import_one(path, full) for path in files]))


def _import_one(path: Path, full: bool) -> int:
    from .importer import import_file

    return _run(path, lambda: _print(path, _with_progress(
        path, lambda progress: import_file(path, full=full, progress=progress))))


def _with_progress(path: Path, action):
    """Run ``action(progress)``; on a terminal, stderr shows lines/s and the time left."""
    from ..cli_support import Progress

    progress = Progress(str(path), path) if path.is_file() else None
    try:
        return action(progress)
    finally:
        if progress is not None:
            progress.close()


@directory.command("sync")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--force", is_flag=True,
              help="Deactivate even more than directory_sync_max_deactivated_percent of the "
                   "active practitioners.")
@with_appcontext
def sync_cmd(file: Path, dry_run: bool, force: bool):
    """Apply FILE, the complete national extract, as a difference: creations, updates, then
    deactivation of the practitioners absent from it (their sessions end, their tokens are
    revoked). An interrupted sync of the same file resumes where it stopped.

    Exit status: 0 done, 1 some lines rejected (the rest applied), 2 FILE could not be
    read (nobody deactivated), 3 deactivations refused by the safeguard (nobody
    deactivated; check the file, then run again with --force)."""
    action = _dry_run if dry_run else _sync
    click.get_current_context().exit(_run(file, lambda: action(file, force)))


def _sync(path: Path, force: bool) -> int:
    from .sync import TooManyDeactivations, sync_file

    try:
        report = _with_progress(path, lambda progress: sync_file(path, force=force,
                                                                 progress=progress))
    except TooManyDeactivations as exc:
        _print(path, exc.report)
        error(str(exc))
        return REFUSED
    if report.resumed_after is not None:
        click.echo(f"{path}: resumed the interrupted sync after line {report.resumed_after}")
    return _print(path, report)


def _dry_run(path: Path, force: bool) -> int:
    from .dry_run import dry_run

    report, allowed = dry_run(path)
    code = _print(path, report, " (dry run, nothing written)")
    if allowed or force:
        return code
    click.echo(f"{path}: the safeguard would refuse to deactivate {report.deactivated} of "
               f"{report.active} active practitioners (see --force)")
    return REFUSED


@directory.command("rebuild-claims")
@with_appcontext
def rebuild_claims_cmd():
    """Build the stored scope_all claims of every active practitioner again from the
    directory tables (psc-idp db upgrade does it when their shape changes)."""
    from ..extensions import db
    from .document import rebuild

    count = rebuild(db.session.connection())
    db.session.commit()
    click.echo(f"stored claims rebuilt for {count} active practitioners")


def _run(path: Path, action) -> int:
    """Run one import or sync of ``path``: its exit status, or FAILED with a one-line
    error if the file or the database could not be used."""
    from ..extensions import db
    from .extract import ExtractError

    try:
        return action()
    except ExtractError as exc:
        error(str(exc))
        return FAILED
    except SQLAlchemyError as exc:
        db.session.rollback()
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        error(f"{path}: database error ({cause}); is the schema up to date? "
              "(psc-idp db upgrade)")
        return FAILED


def _print(path: Path, report, label: str = "") -> int:
    """The summary line, the rejected lines, then the warnings."""
    click.echo(f"{path}{label}: {report.summary()}")
    for line in report.listing():
        click.echo(line)
    return OK if report.ok else REJECTED_LINES
