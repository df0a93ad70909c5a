"""audit hash chain: seq, prev_hash, hash, request_id; chain head; append-only triggers

Revision ID: a7d1c0ffee01
Revises: 502049b5db2e
Create Date: 2026-11-23 07:00:00
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "a7d1c0ffee01"
down_revision = "502049b5db2e"
branch_labels = None
depends_on = None

GENESIS = "0" * 64

PG_FUNCTION = """
CREATE FUNCTION psc_idp_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND (SELECT purging FROM audit_head WHERE id = 1) = 1 THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit records are append-only';
END $$ LANGUAGE plpgsql
"""


def _hash(prev: str, content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_seq"), ["seq"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.Column("purging", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # chain the records written before this migration, in id order
    bind = op.get_bind()
    events = sa.table("audit_event", sa.column("id"), sa.column("seq"), sa.column("at"),
                      sa.column("event"), sa.column("outcome"), sa.column("id_nat"),
                      sa.column("client_id"), sa.column("address"), sa.column("request_id"),
                      sa.column("detail", sa.JSON), sa.column("prev_hash"), sa.column("hash"))
    prev, seq = GENESIS, 0
    for row in bind.execute(sa.select(events).order_by(events.c.id)).mappings().all():
        seq += 1
        content = {"seq": seq, "at": row["at"], "event": row["event"],
                   "outcome": row["outcome"], "id_nat": row["id_nat"],
                   "client_id": row["client_id"], "address": row["address"],
                   "request_id": None, "detail": row["detail"]}
        digest = _hash(prev, content)
        bind.execute(events.update().where(events.c.id == row["id"]).values(
            seq=seq, prev_hash=prev, hash=digest))
        prev = digest
    op.bulk_insert(head, [{"id": 1, "seq": seq, "last_hash": prev, "anchor_seq": 0,
                           "anchor_hash": GENESIS, "purging": 0}])
    if bind.dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute("CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON "
                   "audit_event FOR EACH ROW EXECUTE FUNCTION psc_idp_audit_append_only()")
    else:
        op.execute("CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
                   "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END")
        op.execute("CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
                   "WHEN (SELECT purging FROM audit_head WHERE id = 1) = 0 "
                   "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION psc_idp_audit_append_only()")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_event_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("request_id")
        batch_op.drop_column("seq")
