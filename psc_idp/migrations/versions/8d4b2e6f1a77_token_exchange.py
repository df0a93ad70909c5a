"""clients: the audiences ops allow a client to exchange tokens for (RFC 8693)

Revision ID: 8d4b2e6f1a77
Revises: f3a8c1d5e7b9
Create Date: 2026-12-02 12:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '8d4b2e6f1a77'
down_revision = 'f3a8c1d5e7b9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_exchange_audiences', sa.JSON(), nullable=False,
                                      server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('token_exchange_audiences')
