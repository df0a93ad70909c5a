"""Writing practitioners read from an extract (psc.md §8) into the directory tables: a
practitioner's row, then their exercices, savoir-faire, activities and other identifiers,
and their stored claims (``document``), all in bulk: rows are tuples handed to the driver
as they are (one ``executemany`` on SQLite, ``COPY`` on PostgreSQL), without a statement
compiled per row. Rows follow the file's layout: the columns it has, plus the genre
d'activité GENR01 where it has none (psc.md §10)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import ARRAY, ColumnElement, Connection, Table, any_, bindparam, delete, update
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from .document import builder
from .extract import DEFAULT_GENRE_ACTIVITE, Entry
from .identifiers import parse_other_ids
from .models import Activity, Exercice, OtherId, Practitioner, ProfessionalDocument, SavoirFaire

_P = Practitioner.__table__
#: child tables, deleted before a practitioner is written again
CHILDREN = (Activity, SavoirFaire, Exercice, OtherId, ProfessionalDocument)
_STATE = ("active", "successor_id_nat", "digest", "last_import_id", "updated_at")
_KEY = ("id_nat", "rank")
_EXERCICE_KEY = ("id_nat", "exercice_rank", "rank")


def write(new: list[Entry], changed: list[Entry], touched: list[str], run_id: int) -> None:
    """Create ``new``, replace ``changed`` as a whole, mark ``touched`` as seen by the run."""
    now = int(time.time())
    connection = db.session.connection()
    ids = [entry.id_nat for entry in changed]
    if ids:
        for model in CHILDREN:
            connection.execute(delete(model.__table__)
                               .where(among(connection, model.__table__.c.id_nat, ids)))
        attrs = changed[0].layout.person_attrs
        connection.execute(
            update(_P).where(_P.c.id_nat == bindparam("key")),
            [{"key": e.id_nat, **dict(zip(attrs + _STATE, _state(e, run_id, now), strict=True))}
             for e in changed])
    if new:
        insert_rows(connection, _P, ("id_nat", *new[0].layout.person_attrs, *_STATE,
                                     "created_at"),
                    [(e.id_nat, *_state(e, run_id, now), now) for e in new])
    _insert_children(connection, new + changed)
    if touched:
        connection.execute(update(_P).where(among(connection, _P.c.id_nat, touched))
                           .values(last_import_id=run_id))


def among(connection: Connection, column: ColumnElement, values: list) -> ColumnElement:
    """``column IN values``; on PostgreSQL ``column = ANY(array)``: one parameter, so the
    statement is the same for every batch (parsed and planned once, prepared by the
    driver) instead of one with a placeholder per value."""
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def _state(entry: Entry, run_id: int, now: int) -> tuple:
    """The person's values, then ``_STATE``'s."""
    return (*entry.person, True, None, entry.digest, run_id, now)


def _insert_children(connection: Connection, written: list[Entry]) -> None:
    if not written:
        return
    layout = written[0].layout
    exercices, savoir_faire, activities, other_ids = [], [], [], []
    activity_columns, genre = _with_genre(layout.activity_attrs)
    for entry in written:
        id_nat = entry.id_nat
        for rank, exercice in enumerate(entry.exercices.values()):
            exercices.append((id_nat, rank, *exercice.fields))
            savoir_faire.extend((id_nat, rank, i, *values)
                                for i, values in enumerate(exercice.savoir_faire))
            activities.extend((id_nat, rank, i, *genre(values))
                              for i, values in enumerate(exercice.activities))
        if entry.other_ids:
            other_ids.extend((id_nat, i, o.identifier, o.origin, o.quality)
                             for i, o in enumerate(parse_other_ids(entry.other_ids)))
    document = builder(layout)
    insert_rows(connection, Exercice.__table__, (*_KEY, *layout.exercice_attrs), exercices)
    insert_rows(connection, SavoirFaire.__table__, (*_EXERCICE_KEY,
                                                    *layout.savoir_faire_attrs), savoir_faire)
    insert_rows(connection, Activity.__table__, (*_EXERCICE_KEY, *activity_columns),
                activities)
    insert_rows(connection, OtherId.__table__, (*_KEY, "identifier", "origin", "quality"),
                other_ids)
    insert_rows(connection, ProfessionalDocument.__table__, ("id_nat", "claims"),
                [(e.id_nat, document(e)) for e in written])


def _with_genre(attrs: tuple[str, ...]) -> tuple[tuple[str, ...], Callable]:
    """The columns of an activity as written, and its values: the genre d'activité GENR01
    where the file's is empty, or appended when the file has no such column."""
    if "genre_activite" not in attrs:
        return (*attrs, "genre_activite"), lambda values: (*values, DEFAULT_GENRE_ACTIVITE)
    at = attrs.index("genre_activite")
    return attrs, lambda values: values if values[at] else (
        *values[:at], DEFAULT_GENRE_ACTIVITE, *values[at + 1:])


def insert_rows(connection: Connection, table: Table, columns: Sequence[str],
                rows: list[tuple]) -> None:
    """Insert ``rows``, tuples of the values of ``columns``. One ``executemany`` of one
    prepared statement; on PostgreSQL, COPY: one round trip, in the same transaction."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        marks = ", ".join("?" * len(columns))
        connection.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)
        return
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    dbapi_error = connection.dialect.loaded_dbapi.Error
    with connection.connection.cursor() as cursor:
        try:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as exc:  # as SQLAlchemy would raise it
            raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
