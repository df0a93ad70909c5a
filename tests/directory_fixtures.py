"""Helpers of the directory tests: the real extract samples, the synthetic extracts in PSC's
current formats, the demo extract, an app on a fresh database, small extracts written line
by line, and variants of an extract (other columns, order, encoding)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, func, select

from psc_idp import create_app
from psc_idp.directory.columns import HEADER
from psc_idp.directory.models import (
    Activity,
    DirectoryImport,
    Exercice,
    OtherId,
    Practitioner,
    ProfessionalDocument,
    SavoirFaire,
)
from psc_idp.extensions import db
from tests.plugins.idp import base_settings

RASS = Path(__file__).resolve().parent / "data" / "rass"
SAMPLES = sorted(RASS.glob("Extraction_ProSanteConnect_Personne_activite_*.txt"))
#: PSC's own 51-column extract (UTF-8) and the 50-column national file (Windows-1252)
PSC51 = RASS / "psc_extract_51_columns.txt"
RASS50 = RASS / "rass_extract_50_columns_cp1252.txt"
#: people of PSC51: several savoir-faire; RPPS + ADELI of one person; no profession; PSI;
#: EDIT
BERARD, LEFEVRE, LEFEVRE_ADELI, DUPRE = "899700412309", "899700412317", "0691234567", \
    "899700412325"
PSI_ID, EDIT_ID = "019c5172-a5c0-7188-b81f-5c16807b9140", "EDIT0000000123"
#: people of RASS50: an ADELI-only nurse, a pharmacist
MENARD, GARCON = "0331234567", "899700412333"
DEMO = Path(__file__).resolve().parents[1] / "psc_idp" / "sandbox" / "demo_directory.txt"
KIT = "899700245667"


def directory_app(keys_dir: Path, database_url: str, **settings):
    """An app on a fresh migrated database with an empty directory, inside its app
    context (a fixture body); ``settings`` override the test ones."""
    app = create_app(base_settings(keys_dir, database_url, **settings))
    with app.app_context():
        for model in (ProfessionalDocument, Activity, SavoirFaire, Exercice, OtherId,
                      Practitioner, DirectoryImport):
            db.session.execute(delete(model))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def line(id_nat: str = "899700218896", **values: str) -> str:
    """One extract line for ``id_nat`` (type and identifier derived from it); ``values``
    overrides columns by 0-based position name, e.g. ``c13="60"`` (profession)."""
    fields = [""] * len(HEADER)
    fields[0], fields[1], fields[2] = id_nat[0], id_nat[1:], id_nat
    fields[3], fields[4], fields[12] = "NOM", "PRENOM'SECOND", "M"
    fields[13], fields[14], fields[16], fields[17] = "10", "C", "NOM", "PRENOM"
    fields[20], fields[21], fields[28], fields[29] = "L", "SA07", "R1", "CABINET"
    for name, value in values.items():
        fields[int(name[1:])] = value
    return "|".join(fields) + "|"


def write_extract(path: Path, lines: list[str], *, newline: str = "\n",
                  encoding: str = "utf-8", header=HEADER) -> Path:
    text = newline.join(["|".join(header) + "|", *lines]) + newline
    path.write_bytes(text.encode(encoding))
    return path


def row_counts() -> dict[str, int]:
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Practitioner, Exercice, SavoirFaire, Activity, OtherId)}


def variant(source: Path, path: Path, columns: list[str], *, header: list[str] | None = None,
            encoding: str = "utf-8", newline: str = "\n") -> Path:
    """``source`` rewritten with only ``columns`` (header names of ``source``), in that
    order, under the names ``header`` (default: the same), in ``encoding``."""
    raw = source.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    rows = [row.rstrip("\r").split("|")[:-1] for row in text.split("\n") if row.strip()]
    picks = [rows[0].index(name) for name in columns]
    out = ["|".join(header or columns) + "|"]
    out += ["|".join(row[i] for i in picks if i < len(row)) + "|" for row in rows[1:]]
    path.write_bytes((newline.join(out) + newline).encode(encoding))
    return path
