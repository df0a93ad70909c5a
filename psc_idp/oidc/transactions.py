"""How protocol requests use the database, in as few round trips as they can: a request
that only reads does it outside any transaction (autocommit: no BEGIN, no ROLLBACK); a
token response sends its new rows with the COMMIT, in one round trip on PostgreSQL
(psycopg's pipeline mode: the statements travel together, PostgreSQL answers them all at
the Sync)."""

from __future__ import annotations

import functools

from flask import g
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from ..extensions import db


def read_only(view):
    """The view only reads, through a connection of its own in autocommit (``connection``):
    each lookup is one statement, and the request ends without a rollback to send."""
    @functools.wraps(view)
    def reading(*args, **kwargs):
        with db.engine.connect() as reader:
            g.psc_idp_reader = reader.execution_options(isolation_level="AUTOCOMMIT")
            try:
                return view(*args, **kwargs)
            finally:
                del g.psc_idp_reader
    return reading


def connection():
    """Where the request's statements go: the read-only view's connection, or the
    session's (in its transaction)."""
    return g.get("psc_idp_reader") or db.session.connection()


def commit() -> None:
    """Commit the request's transaction. On PostgreSQL its new rows (``session.add``) are
    inserted with statements that read nothing back and sent in one pipeline with the
    COMMIT: one round trip. (An ORM flush would ask for each new row's id, a round trip
    each, which a pipeline cannot carry through SQLAlchemy.) The rows are then out of the
    session: nothing reads them after the response."""
    session = db.session()
    connection = session.connection()
    if connection.dialect.driver != "psycopg":
        session.commit()
        return
    inserts = _take_new_rows(session)
    session.flush()  # changes to rows already loaded, if any, the usual way
    driver = connection.connection.driver_connection
    try:
        with driver.pipeline():
            for table, values in inserts:
                connection.execute(table.insert().inline(), values)
            connection.exec_driver_sql("COMMIT")
    except connection.dialect.loaded_dbapi.Error as exc:
        # raised at the pipeline's Sync, outside SQLAlchemy: wrapped as it would have
        raise _wrapped(connection, driver, exc) from exc
    session.commit()  # ended in the pipeline: nothing left to send


def _take_new_rows(session) -> list[tuple]:
    """The session's pending new rows as (table, column values), in dependency order,
    taken out of the session; the values left unset get their defaults in the INSERT."""
    rows = []
    for obj in list(session.new):
        state = inspect(obj)
        table = state.mapper.local_table
        values = {prop.columns[0].key: state.dict[prop.key]
                  for prop in state.mapper.column_attrs if prop.key in state.dict}
        rows.append((table, values))
        session.expunge(obj)
    order = _table_order()
    return sorted(rows, key=lambda row: order.get(row[0], 0))


@functools.cache
def _table_order() -> dict:
    return {table: rank for rank, table in enumerate(db.metadata.sorted_tables)}


def _wrapped(connection, driver, exc: Exception) -> DBAPIError:
    invalidated = connection.dialect.is_disconnect(exc, driver, None)
    if invalidated:
        connection.invalidate(exc)
    return DBAPIError.instance(None, None, exc, connection.dialect.loaded_dbapi.Error,
                               connection_invalidated=invalidated,
                               dialect=connection.dialect)
