"""Writing practitioners read from an extract (psc.md §8) into the directory tables: a
practitioner's row, then their exercices, savoir-faire, activities and other identifiers,
and their stored claims (``document``), all in bulk (``COPY`` on PostgreSQL). Rows follow
the file's layout: the columns it has, plus the genre d'activité GENR01 where it has none
(psc.md §10)."""

from __future__ import annotations

import time

from sqlalchemy import Connection, Table, bindparam, delete, insert, update
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from .document import builder
from .extract import DEFAULT_GENRE_ACTIVITE, Entry
from .identifiers import parse_other_ids
from .models import Activity, Exercice, OtherId, Practitioner, ProfessionalDocument, SavoirFaire

_P = Practitioner.__table__
#: child tables, deleted before a practitioner is written again
CHILDREN = (Activity, SavoirFaire, Exercice, OtherId, ProfessionalDocument)


def write(new: list[Entry], changed: list[Entry], touched: list[str], run_id: int) -> None:
    """Create ``new``, replace ``changed`` as a whole, mark ``touched`` as seen by the run."""
    now = int(time.time())
    ids = [entry.id_nat for entry in changed]
    if ids:
        for model in CHILDREN:
            db.session.execute(delete(model.__table__)
                               .where(model.__table__.c.id_nat.in_(ids)))
        db.session.execute(
            update(_P).where(_P.c.id_nat == bindparam("key")),
            [{"key": e.id_nat, **_practitioner_row(e, run_id, now)} for e in changed])
    if new:
        insert_rows(_P, [{"id_nat": e.id_nat, "created_at": now,
                          **_practitioner_row(e, run_id, now)} for e in new])
    _insert_children(new + changed)
    if touched:
        db.session.execute(update(_P).where(_P.c.id_nat.in_(touched))
                           .values(last_import_id=run_id))


def _practitioner_row(entry: Entry, run_id: int, now: int) -> dict:
    return {**_named(entry.layout.person_attrs, entry.person),
            "active": True, "successor_id_nat": None, "digest": entry.digest,
            "last_import_id": run_id, "updated_at": now}


def _insert_children(written: list[Entry]) -> None:
    rows = {model: [] for model in CHILDREN}
    for entry in written:
        layout = entry.layout
        for rank, exercice in enumerate(entry.exercices.values()):
            key = {"id_nat": entry.id_nat, "exercice_rank": rank}
            rows[Exercice].append({"id_nat": entry.id_nat, "rank": rank,
                                   **_named(layout.exercice_attrs, exercice.fields)})
            rows[SavoirFaire].extend({**key, "rank": i,
                                      **_named(layout.savoir_faire_attrs, values)}
                                     for i, values in enumerate(exercice.savoir_faire))
            rows[Activity].extend(_activity_row(key, i, layout.activity_attrs, values)
                                  for i, values in enumerate(exercice.activities))
        rows[OtherId].extend(
            {"id_nat": entry.id_nat, "rank": i, "identifier": other.identifier,
             "origin": other.origin, "quality": other.quality}
            for i, other in enumerate(parse_other_ids(entry.other_ids)))
    if written:
        document = builder(written[0].layout)
        rows[ProfessionalDocument] = [{"id_nat": e.id_nat, "claims": document(e)}
                                      for e in written]
    for model in (Exercice, SavoirFaire, Activity, OtherId, ProfessionalDocument):
        insert_rows(model.__table__, rows[model])


def _named(attrs: tuple[str, ...], values: tuple[str, ...]) -> dict:
    return dict(zip(attrs, values, strict=True))


def _activity_row(key: dict, rank: int, attrs: tuple[str, ...], values) -> dict:
    row = {**key, "rank": rank, "genre_activite": "", **_named(attrs, values)}
    if not row["genre_activite"]:
        row["genre_activite"] = DEFAULT_GENRE_ACTIVITE
    return row


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
