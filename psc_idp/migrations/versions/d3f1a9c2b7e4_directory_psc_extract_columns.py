"""directory: the columns of PSC's 50- and 51-column extracts

Revision ID: d3f1a9c2b7e4
Revises: b636b8829b60
Create Date: 2026-12-01 04:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'd3f1a9c2b7e4'
down_revision = 'b636b8829b60'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
