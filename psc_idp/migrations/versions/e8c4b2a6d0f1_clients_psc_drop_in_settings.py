"""clients: PSC drop-in settings (strict client auth, access token format, refresh grace);
tokens: the authorization request's nonce

Revision ID: e8c4b2a6d0f1
Revises: d3f1a9c2b7e4
Create Date: 2026-12-01 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'e8c4b2a6d0f1'
down_revision = 'd3f1a9c2b7e4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('strict_client_auth', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('access_token_format', sa.String(length=10),
                                      nullable=False, server_default='psc'))
        batch_op.add_column(sa.Column('refresh_reuse_grace', sa.Integer(), nullable=True))
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nonce', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.drop_column('nonce')
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('refresh_reuse_grace')
        batch_op.drop_column('access_token_format')
        batch_op.drop_column('strict_client_auth')
