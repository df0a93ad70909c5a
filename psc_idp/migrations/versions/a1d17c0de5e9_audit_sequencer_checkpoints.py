"""audit sequencer: records numbered by a sequence, chained after commit (chain_seq); signed checkpoints, each naming the previous one, the newest named by audit_head.checkpoint_seq; append-only triggers allowing the one chaining UPDATE

Revision ID: a1d17c0de5e9
Revises: 812ebd55c684
Create Date: 2026-12-01 06:20:00
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = 'a1d17c0de5e9'
down_revision = '812ebd55c684'
branch_labels = None
depends_on = None

CONTENT = ("seq", "at", "event", "outcome", "id_nat", "client_id", "address", "request_id",
           "detail")
SAME_CONTENT = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in ("id",) + CONTENT)


def _pg_content(row: str) -> str:
    return ", ".join(f"{row}.{c}" for c in ("id",) + CONTENT[:-1]) + f", {row}.detail::text"


# the sequencer fills chain_seq, prev_hash and hash once; nothing else ever changes
PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION psc_idp_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND (SELECT purging FROM audit_head WHERE id = 1) = 1 THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_event' THEN
    IF OLD.chain_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
       AND NEW.chain_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND ({_pg_content('NEW')}) IS NOT DISTINCT FROM ({_pg_content('OLD')}) THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit records are append-only';
END $$ LANGUAGE plpgsql
"""

PG_FUNCTION_BEFORE = """
CREATE OR REPLACE FUNCTION psc_idp_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND (SELECT purging FROM audit_head WHERE id = 1) = 1 THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit records are append-only';
END $$ LANGUAGE plpgsql
"""

REFUSE = "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END"
SQLITE_NO_UPDATE = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event WHEN NOT ("
    "OLD.chain_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL AND "
    "NEW.chain_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL AND "
    f"{SAME_CONTENT}) {REFUSE}")
SQLITE_NO_UPDATE_BEFORE = f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event {REFUSE}"


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    _triggers_off(postgres)
    op.add_column("audit_event", sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE audit_event SET chain_seq = seq")  # chained so far at their number
    op.create_index("ix_audit_event_chain_seq", "audit_event", ["chain_seq"], unique=True)
    op.create_index("ix_audit_event_unchained", "audit_event", ["seq"],
                    postgresql_where=sa.text("hash IS NULL"),
                    sqlite_where=sa.text("hash IS NULL"))
    op.create_table(
        "audit_checkpoint",
        sa.Column("chain_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("prev_seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kid", sa.String(length=100), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("chain_seq", name=op.f("pk_audit_checkpoint")),
    )
    op.add_column("audit_head", sa.Column("checkpoint_seq", sa.BigInteger(), nullable=False,
                                          server_default="0"))
    if postgres:
        last = bind.execute(sa.text(
            "SELECT greatest((SELECT coalesce(max(seq), 0) FROM audit_event), "
            "(SELECT seq FROM audit_head WHERE id = 1))")).scalar()
        op.execute("CREATE SEQUENCE audit_event_seq OWNED BY audit_event.seq")
        if last:
            op.execute(f"SELECT setval('audit_event_seq', {int(last)})")
        op.execute(PG_FUNCTION)
        op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
        op.execute("CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON "
                   "audit_checkpoint FOR EACH ROW EXECUTE FUNCTION psc_idp_audit_append_only()")
        op.execute("CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON "
                   "audit_checkpoint FOR EACH STATEMENT EXECUTE FUNCTION "
                   "psc_idp_audit_append_only()")
    else:
        op.execute(SQLITE_NO_UPDATE)
        op.execute(f"CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON "
                   f"audit_checkpoint {REFUSE}")
        op.execute("CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint "
                   f"WHEN (SELECT purging FROM audit_head WHERE id = 1) = 0 {REFUSE}")


def downgrade() -> None:
    """Back to one number per record, its place in the chain: the records not chained yet
    are chained, and those numbered otherwise are renumbered and hashed again (their
    checkpoints go with the table)."""
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    _triggers_off(postgres)
    _fold(bind)
    op.drop_table("audit_checkpoint")
    op.execute("ALTER TABLE audit_head DROP COLUMN checkpoint_seq")
    op.drop_index("ix_audit_event_unchained", table_name="audit_event")
    op.drop_index("ix_audit_event_chain_seq", table_name="audit_event")
    op.execute("ALTER TABLE audit_event DROP COLUMN chain_seq")
    if postgres:
        op.execute("DROP SEQUENCE audit_event_seq")
        op.execute(PG_FUNCTION_BEFORE)
        op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
    else:
        op.execute(SQLITE_NO_UPDATE_BEFORE)


def _triggers_off(postgres: bool) -> None:
    if postgres:
        op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")


def _hash(prev: str, content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def _fold(bind) -> None:
    events = sa.table("audit_event", sa.column("id"), sa.column("chain_seq"),
                      *(sa.column(c, sa.JSON) if c == "detail" else sa.column(c)
                        for c in CONTENT), sa.column("prev_hash"), sa.column("hash"))
    head = bind.execute(sa.text("SELECT anchor_seq, anchor_hash FROM audit_head "
                                "WHERE id = 1")).one()
    rows = bind.execute(sa.select(events).order_by(
        events.c.chain_seq.is_(None), events.c.chain_seq, events.c.seq)).mappings().all()
    position, prev, changes = head.anchor_seq, head.anchor_hash, []
    for row in rows:
        position += 1
        if not changes and row["chain_seq"] == row["seq"] == position:
            prev = row["hash"]
            continue
        content = {c: row[c] for c in CONTENT} | {"seq": position}
        digest = _hash(prev, content)
        changes.append({"row_id": row["id"], "number": position, "prev": prev,
                        "digest": digest})
        prev = digest
    if changes:  # numbers are unique: free them first
        bind.execute(sa.text("UPDATE audit_event SET seq = -seq WHERE id = :row_id"), changes)
        bind.execute(sa.text("UPDATE audit_event SET seq = :number, prev_hash = :prev, "
                             "hash = :digest WHERE id = :row_id"), changes)
    bind.execute(sa.text("UPDATE audit_head SET seq = :s, last_hash = :h WHERE id = 1"),
                 {"s": position, "h": prev})
