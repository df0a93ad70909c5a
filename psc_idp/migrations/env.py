"""Alembic environment: migrations run on the app's engine (SQLite or PostgreSQL)."""

from alembic import context

from psc_idp.extensions import db
from psc_idp.schema import metadata


def run() -> None:
    with db.engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=metadata, compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run()
