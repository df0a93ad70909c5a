"""protocol round trips: the client version (every process's client cache), refresh token
presentations counted (rotation with one conditional statement)

Revision ID: b2e28d1f6fa0
Revises: a1d17c0de5e9
Create Date: 2026-12-01 06:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'b2e28d1f6fa0'
down_revision = 'a1d17c0de5e9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    version = op.create_table(
        'client_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_client_version')),
    )
    op.bulk_insert(version, [{'id': 1, 'version': 0}])
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refresh_uses', sa.Integer(), nullable=False,
                                      server_default='0'))
    # a refresh token rotated before this revision was presented once
    op.execute("UPDATE oauth_token SET refresh_uses = 1 WHERE rotated_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.drop_column('refresh_uses')
    op.drop_table('client_version')
