"""Helpers of the directory tests: the real extract samples, the demo extract, an app on a
fresh database, and small extracts written line by line."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, func, select

from psc_idp import create_app
from psc_idp.directory.extract import HEADER
from psc_idp.directory.models import (
    Activity,
    DirectoryImport,
    Exercice,
    Practitioner,
    SavoirFaire,
)
from psc_idp.extensions import db
from tests.plugins.idp import base_settings

RASS = Path(__file__).resolve().parent / "data" / "rass"
SAMPLES = sorted(RASS.glob("Extraction_ProSanteConnect_Personne_activite_*.txt"))
DEMO = Path(__file__).resolve().parents[1] / "psc_idp" / "sandbox" / "demo_directory.txt"
KIT = "899700245667"


def directory_app(keys_dir: Path, database_url: str):
    """An app on a fresh migrated database with an empty directory, inside its app
    context (a fixture body)."""
    app = create_app(base_settings(keys_dir, database_url))
    with app.app_context():
        for model in (Activity, SavoirFaire, Exercice, Practitioner, DirectoryImport):
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
                  encoding: str = "utf-8") -> Path:
    text = newline.join(["|".join(HEADER) + "|", *lines]) + newline
    path.write_bytes(text.encode(encoding))
    return path


def row_counts() -> dict[str, int]:
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Practitioner, Exercice, SavoirFaire, Activity)}
