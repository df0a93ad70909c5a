"""``psc-idp directory import FILE…``: load national directory extracts (psc.md §8).

Exit status: 0 every line was imported; 1 some lines were rejected (listed); 2 a file
could not be imported at all (unreadable, not an extract, database unavailable)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

OK, REJECTED_LINES, FAILED = 0, 1, 2


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

    Prints one summary line per file, then its rejected lines. Exit status: 0 all lines
    imported, 1 some lines rejected, 2 a file could not be imported."""
    if full and len(files) != 1:
        raise click.UsageError("--full takes exactly one FILE (the complete extract)")
    click.get_current_context().exit(max([_import_one(path, full) for path in files]))


def _import_one(path: Path, full: bool) -> int:
    from ..extensions import db
    from .extract import ExtractError
    from .importer import import_file

    try:
        report = import_file(path, full=full)
    except ExtractError as exc:
        click.echo(f"Error: {exc}", err=True)
        return FAILED
    except SQLAlchemyError as exc:
        db.session.rollback()
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(f"Error: {path}: database error ({cause}); is the schema up to date? "
                   "(psc-idp db upgrade)", err=True)
        return FAILED
    click.echo(f"{path}: {report.summary()}")
    for rejection in report.rejections:
        click.echo(f"  line {rejection.line}: {rejection.reason}")
    unlisted = report.rejected_lines - len(report.rejections)
    if unlisted:
        click.echo(f"  … and {unlisted} more rejected lines")
    return OK if report.ok else REJECTED_LINES
