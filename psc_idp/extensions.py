"""Flask extensions shared by every area of psc-idp: the database handle, and ``idp()``,
the per-app state (settings, key ring, card verifier, OAuth server) of the current app."""

from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


def idp():
    """The current app's ``app.Idp``: its settings, keys, card verifier and OAuth server."""
    return current_app.extensions["psc_idp"]
