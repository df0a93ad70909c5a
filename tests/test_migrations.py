"""The migrations build exactly the schema the models declare, on both databases: a column,
index or table added to a model without its migration (or the reverse) fails here."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from psc_idp import create_app
from psc_idp.extensions import db

from .plugins.idp import base_settings


@pytest.fixture
def app(keys_dir, database_url):
    app = create_app(base_settings(keys_dir, database_url))
    yield app
    with app.app_context():
        db.engine.dispose()


def test_the_migrated_schema_is_the_models_schema(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
