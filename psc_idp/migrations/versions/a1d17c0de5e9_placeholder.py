"""audit sequencer, checkpoints

Revision ID: a1d17c0de5e9
Revises: 812ebd55c684
Create Date: 2026-12-01 06:20:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'a1d17c0de5e9'
down_revision = '812ebd55c684'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
