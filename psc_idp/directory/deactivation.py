"""Deactivating the practitioners a complete extract no longer lists (psc.md §8): they can
no longer log in, their SSO sessions end and their tokens are revoked, in small batches,
each one transaction with an audit record per practitioner. Their data is kept (not their
stored claims, ``document``): a later extract that lists them again brings them back."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update

from .. import audit
from ..extensions import db
from ..oidc import revocation
from ..oidc.models import now
from .document import forget
from .models import DirectoryImport, Practitioner

BATCH_SIZE = 500

_P = Practitioner.__table__


def absent(run_id: int) -> ColumnElement[bool]:
    """Active practitioners that run ``run_id`` did not see (nor any later run)."""
    return and_(_P.c.active == true(),
                or_(_P.c.last_import_id.is_(None), _P.c.last_import_id < run_id))


def count_absent(run_id: int) -> int:
    return db.session.scalar(select(func.count()).where(absent(run_id)))


def count_active() -> int:
    return db.session.scalar(select(func.count()).where(_P.c.active == true()))


def deactivate_absent(run_id: int, batch_size: int = BATCH_SIZE) -> int:
    """Deactivate everyone ``run_id`` did not see, in idNat order; returns how many."""
    total, after = 0, ""
    while ids := db.session.scalars(
            select(_P.c.id_nat).where(absent(run_id), _P.c.id_nat > after)
            .order_by(_P.c.id_nat).limit(batch_size)).all():
        total += _deactivate(ids, run_id)
        after = ids[-1]
    return total


def _deactivate(ids: list[str], run_id: int) -> int:
    current = now()
    sessions, tokens = end_sessions(ids, current)
    db.session.execute(update(_P).where(_P.c.id_nat.in_(ids))
                       .values(active=False, updated_at=current))
    forget(db.session.connection(), ids)
    db.session.execute(update(DirectoryImport).where(DirectoryImport.id == run_id)
                       .values(deactivated=DirectoryImport.deactivated + len(ids))
                       .execution_options(synchronize_session=False))
    audit.record_many("directory.deactivated", [
        (id_nat, {"run": run_id, "sessions_ended": sessions.get(id_nat, 0),
                  "tokens_revoked": tokens.get(id_nat, 0)}) for id_nat in ids])
    db.session.commit()
    return len(ids)


def end_sessions(ids: list[str], current: int) -> tuple[dict[str, int], dict[str, int]]:
    """End the live SSO sessions and revoke the live tokens of ``ids``; how many of each,
    by idNat (in the caller's transaction). The one home of this is ``oidc.revocation``."""
    return revocation.end_practitioner_sessions(ids, current)
