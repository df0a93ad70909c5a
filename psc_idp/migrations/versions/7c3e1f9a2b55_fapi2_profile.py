"""clients: the FAPI 2.0 Security Profile switch

Revision ID: 7c3e1f9a2b55
Revises: 5e0a9c3d7b12
Create Date: 2026-12-02 11:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '7c3e1f9a2b55'
down_revision = '5e0a9c3d7b12'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fapi2_security_profile', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('fapi2_security_profile')
