"""Finding the practitioner who logs in or for whom tokens are issued: one indexed query
(the idNat is the primary key) that also loads everything the claims need."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from .models import Exercice, Practitioner


def find_active(id_nat: str) -> Practitioner | None:
    """The practitioner with this idNat if they are in the directory and active; None for
    an unknown or deactivated one (who must not log in)."""
    exercices = joinedload(Practitioner.exercices)
    query = (
        select(Practitioner)
        .where(Practitioner.id_nat == id_nat, Practitioner.active.is_(True))
        .options(exercices.joinedload(Exercice.activities),
                 exercices.joinedload(Exercice.savoir_faire))
    )
    return db.session.execute(query).unique().scalar_one_or_none()
