"""``directory sync --dry-run``: what a sync of a complete extract would do (psc.md §8) —
the same plan, batch by batch, with the practitioners seen and the other identifiers they
list kept in temporary tables of the dry run's own connection; nothing of the directory is
written. Memory is bounded by the batch size whatever the size of the file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, Text, func, select, true

from ..extensions import db
from .extract import Entry, blocks, open_extract
from .identifiers import parse_other_ids
from .importer import BATCH_SIZE, Stored, batches, line_numbers, plan_batch, production
from .models import Practitioner
from .sync import SyncReport, limit_percent
from .writer import insert_rows

_P = Practitioner.__table__


def dry_run(path: Path, *, limit: int | None = None, batch_size: int = BATCH_SIZE
            ) -> tuple[SyncReport, bool]:
    """What ``sync_file`` would do, and whether the safeguard would let it deactivate;
    writes nothing to the directory."""
    report = SyncReport(str(path))
    metadata = MetaData()
    seen = Table("directory_dry_run_seen", metadata, Column("id_nat", String(40),
                 primary_key=True), prefixes=["TEMPORARY"])
    links = Table("directory_dry_run_links", metadata, Column("identifier", Text),
                  Column("id_nat", String(40)), prefixes=["TEMPORARY"])
    with open_extract(Path(path)) as extract, db.engine.connect() as conn:
        metadata.create_all(conn)
        conn.commit()
        try:
            report.header(extract.layout)
            for batch in batches(blocks(extract.lines, extract.layout, test_ids=production()),
                                 batch_size):
                _plan(conn, seen, links, batch, report)
            _absent(conn, seen, links, report)
        finally:
            conn.rollback()
            metadata.drop_all(conn)
            conn.commit()
    limit = limit_percent() if limit is None else limit
    return report, 100 * report.deactivated <= limit * report.active


def _plan(conn, seen: Table, links: Table, batch: list, report: SyncReport) -> None:
    plan = plan_batch(batch, _stored(conn, seen, batch), report)
    report.lines += sum(len(line_numbers(item)) for item in batch)
    report.imported += len(plan.new)
    report.updated += len(plan.changed)
    report.unchanged += len(plan.unchanged)
    insert_rows(conn, seen, ("id_nat",), [(id_nat,) for id_nat in plan.marked()])
    insert_rows(conn, links, ("identifier", "id_nat"), [
        (other.identifier, item.id_nat) for item in batch if isinstance(item, Entry)
        for other in parse_other_ids(item.other_ids) if other.identifier != item.id_nat])
    conn.commit()


def _absent(conn, seen: Table, links: Table, report: SyncReport) -> None:
    """The practitioners the sync would deactivate, and those it would link instead."""
    active = _P.c.active == true()
    absent = select(_P.c.id_nat).where(active, _P.c.id_nat.not_in(select(seen.c.id_nat)))
    report.active = conn.scalar(select(func.count()).where(active))
    unique = (select(links.c.identifier).where(links.c.identifier.in_(absent))
              .group_by(links.c.identifier)
              .having(func.count(func.distinct(links.c.id_nat)) == 1).subquery())
    report.linked = conn.scalar(select(func.count()).select_from(unique))
    report.deactivated = conn.scalar(select(func.count()).select_from(absent.subquery())) \
        - report.linked


def _stored(conn, seen: Table, batch: list) -> dict[str, Stored]:
    ids = [item.id_nat for item in batch if item.id_nat]
    earlier = set(conn.scalars(select(seen.c.id_nat).where(seen.c.id_nat.in_(ids))))
    stored = {row.id_nat: Stored(row.digest, row.active, row.id_nat in earlier)
              for row in conn.execute(select(_P.c.id_nat, _P.c.digest, _P.c.active)
                                      .where(_P.c.id_nat.in_(ids)))}
    for id_nat in earlier - set(stored):  # new practitioners read earlier in the file
        stored[id_nat] = Stored(None, False, True)
    return stored
