"""protocol round trips (cache versions, code and token columns)

Revision ID: b2e28d1f6fa0
Revises: a1d17c0de5e9
Create Date: 2026-12-01 06:20:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'b2e28d1f6fa0'
down_revision = 'a1d17c0de5e9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
