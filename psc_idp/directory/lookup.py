"""Finding the practitioner who logs in or for whom tokens are issued: one indexed query
(the idNat is the primary key) that also loads everything the claims need."""

from __future__ import annotations

from flask import g, has_request_context
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from .models import Exercice, Practitioner


def find_active(id_nat: str) -> Practitioner | None:
    """The practitioner with this idNat if they are in the directory and active; None for
    an unknown or deactivated one (who must not log in). Remembered for the rest of the
    request: a token response needs it for the access token and the ID token."""
    cache = g.setdefault("_active_practitioners", {}) if has_request_context() else {}
    if id_nat not in cache:
        cache[id_nat] = _query(id_nat)
    return cache[id_nat]


def _query(id_nat: str) -> Practitioner | None:
    exercices = joinedload(Practitioner.exercices)
    query = (
        select(Practitioner)
        .where(Practitioner.id_nat == id_nat, Practitioner.active.is_(True))
        .options(exercices.joinedload(Exercice.activities),
                 exercices.joinedload(Exercice.savoir_faire))
    )
    return db.session.execute(query).unique().scalar_one_or_none()


def find_identity(id_nat: str) -> Practitioner | None:
    """The active practitioner's own row only (names), for token issuance: no exercices,
    activities or structures, which only userinfo needs. Remembered for the request."""
    cache = g.setdefault("_active_identities", {}) if has_request_context() else {}
    if id_nat not in cache:
        query = select(Practitioner).where(Practitioner.id_nat == id_nat,
                                           Practitioner.active.is_(True))
        cache[id_nat] = db.session.execute(query).scalar_one_or_none()
    return cache[id_nat]
