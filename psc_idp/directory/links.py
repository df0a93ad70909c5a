"""A practitioner who continues under another idNat (psc.md §10): an ADELI idNat that leaves
the national extract while a practitioner of the same extract lists it among their ``Autres
identifiants`` (typically their RPPS). PSC's loader does not delete such ADELI ids (its rule
RG01); psc-idp links them instead of deactivating them as gone:

- the former idNat is marked inactive with ``successor_id_nat`` = the practitioner listing it
  (it no longer logs in by itself: its sessions end, its tokens are revoked and its stored
  claims are deleted);
- its e-CPS devices move to the successor, so the professional logs in with the same phone
  under the new idNat;
- one ``directory.linked`` audit record on the successor names the former idNat; the audit
  trail is append-only, so the history stays under the former idNat and is found from the
  successor through ``lineage`` (``psc-idp audit export --id-nat``, the console).

Only a former idNat listed by exactly one practitioner of the run is linked; the safeguard
of ``sync`` does not count the linked as deactivations."""

from __future__ import annotations

from sqlalchemy import func, or_, select, true, update

from .. import audit
from ..ecps.models import Device
from ..extensions import db
from ..oidc.models import now
from .deactivation import BATCH_SIZE, end_sessions
from .document import forget
from .models import DirectoryImport, OtherId, Practitioner

_P = Practitioner.__table__
_O = OtherId.__table__
#: longest chain of successive idNats followed by ``lineage``
MAX_LINEAGE = 10


def _listed_by_one(run_id: int, after: str = ""):
    """(former, successor) rows: an absent practitioner listed as another identifier by
    exactly one practitioner this run saw, in idNat order after ``after``. Driven by the
    absent (few) through the index on ``identifier``."""
    former, successor = _P.alias("former"), _P.alias("successor")
    return (select(former.c.id_nat, func.min(successor.c.id_nat))
            .join(_O, _O.c.identifier == former.c.id_nat)
            .join(successor, successor.c.id_nat == _O.c.id_nat)
            .where(former.c.active == true(), former.c.id_nat > after,
                   or_(former.c.last_import_id.is_(None), former.c.last_import_id < run_id),
                   _O.c.id_nat != former.c.id_nat, successor.c.active == true(),
                   successor.c.last_import_id == run_id)
            .group_by(former.c.id_nat)
            .having(func.count(func.distinct(successor.c.id_nat)) == 1)
            .order_by(former.c.id_nat))


def count_linkable(run_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(
        _listed_by_one(run_id).subquery()))


def link_absent(run_id: int, batch_size: int = BATCH_SIZE) -> int:
    """Link every absent former idNat to its successor, in batches of one transaction
    each; returns how many were linked."""
    total, after = 0, ""
    while pairs := db.session.execute(_listed_by_one(run_id, after).limit(batch_size)).all():
        total += _link(dict(pairs), run_id)
        after = pairs[-1][0]
    return total


def _link(successors: dict[str, str], run_id: int) -> int:
    current = now()
    formers = list(successors)
    devices = dict(db.session.execute(select(Device.id_nat, func.count()).where(
        Device.id_nat.in_(formers)).group_by(Device.id_nat)).all())
    sessions, tokens = end_sessions(formers, current)
    for former, successor in successors.items():
        db.session.execute(update(Device).where(Device.id_nat == former)
                           .values(id_nat=successor)
                           .execution_options(synchronize_session=False))
        db.session.execute(update(_P).where(_P.c.id_nat == former).values(
            active=False, successor_id_nat=successor, updated_at=current))
    forget(db.session.connection(), formers)
    db.session.execute(update(DirectoryImport).where(DirectoryImport.id == run_id)
                       .values(linked=DirectoryImport.linked + len(formers))
                       .execution_options(synchronize_session=False))
    audit.record_many("directory.linked", [
        (successor, {"run": run_id, "former_id_nat": former,
                     "devices_moved": devices.get(former, 0),
                     "sessions_ended": sessions.get(former, 0),
                     "tokens_revoked": tokens.get(former, 0)})
        for former, successor in successors.items()])
    db.session.commit()
    return len(formers)


def successor(id_nat: str) -> str | None:
    """The active practitioner a former idNat was linked to (through any number of links),
    or None: a professional whose ADELI card still names the old idNat logs in as the
    practitioner they became."""
    current = id_nat
    for _ in range(MAX_LINEAGE):
        row = db.session.execute(select(_P.c.successor_id_nat, _P.c.active)
                                 .where(_P.c.id_nat == current)).first()
        if row is None:
            return None
        if row.active and current != id_nat:
            return current
        if row.successor_id_nat is None:
            return None
        current = row.successor_id_nat
    return None


def lineage(id_nat: str) -> list[str]:
    """``id_nat`` and the former idNats linked to it, directly or through others."""
    found, frontier = [id_nat], [id_nat]
    for _ in range(MAX_LINEAGE):
        frontier = [former for former in db.session.scalars(
            select(_P.c.id_nat).where(_P.c.successor_id_nat.in_(frontier))
            .order_by(_P.c.id_nat)) if former not in found]
        if not frontier:
            break
        found.extend(frontier)
    return found

