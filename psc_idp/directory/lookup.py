"""Finding the practitioner who logs in or for whom tokens are issued: one indexed query
(the idNat is the primary key), remembered for the rest of the request (a token response
needs the practitioner for the access token and for the ID token); and the stored
``scope_all`` claims that userinfo serves (one row, ``document``)."""

from __future__ import annotations

from flask import g, has_request_context
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from .document import decode
from .models import Exercice, Practitioner, ProfessionalDocument

_D = ProfessionalDocument.__table__


def find_active(id_nat: str) -> Practitioner | None:
    """The practitioner with this idNat if they are in the directory and active, with
    everything the claims need; None for an unknown or deactivated one (who must not log
    in)."""
    exercices = joinedload(Practitioner.exercices)
    return _remembered("full", id_nat, exercices.joinedload(Exercice.activities),
                       exercices.joinedload(Exercice.savoir_faire),
                       joinedload(Practitioner.other_ids))


def find_identity(id_nat: str) -> Practitioner | None:
    """The active practitioner's own row only (names), for token issuance: no exercices,
    activities or structures, which only userinfo needs."""
    return _remembered("identity", id_nat)


def professional_document(id_nat: str) -> dict | None:
    """The stored ``scope_all`` claims of an active practitioner (``claims.build``: psc.md
    §3's userinfo but ``sub``, ``authMode`` and ``Palier_Authentification``; a client's
    spellings with ``claims.apply_compat``), or None for an unknown or deactivated one.
    One query, one row."""
    text = db.session.execute(select(_D.c.claims).where(_D.c.id_nat == id_nat)).scalar()
    return None if text is None else decode(text)


def _remembered(kind: str, id_nat: str, *options) -> Practitioner | None:
    cache = g.setdefault("_practitioners", {}) if has_request_context() else {}
    if (kind, id_nat) not in cache:
        query = select(Practitioner).where(Practitioner.id_nat == id_nat,
                                           Practitioner.active.is_(True)).options(*options)
        cache[kind, id_nat] = db.session.execute(query).unique().scalar_one_or_none()
    return cache[kind, id_nat]
