"""audit: refuse TRUNCATE of audit_event (PostgreSQL; row triggers do not see it)

Revision ID: c4e1a7d2b9f3
Revises: a7d1c0ffee01
Create Date: 2026-11-23 07:40:00
"""

from alembic import op

revision = "c4e1a7d2b9f3"
down_revision = "a7d1c0ffee01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite has no TRUNCATE
        op.execute("CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
                   "FOR EACH STATEMENT EXECUTE FUNCTION psc_idp_audit_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_no_truncate ON audit_event")
