"""directory: stored professional claims

Revision ID: c3f39e2a7b01
Revises: b2e28d1f6fa0
Create Date: 2026-12-01 06:20:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'c3f39e2a7b01'
down_revision = 'b2e28d1f6fa0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
