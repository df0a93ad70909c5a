"""pushed authorization requests (RFC 9126); clients: PAR required, request objects

Revision ID: 5e0a9c3d7b12
Revises: d9f0e1a2b3c4
Create Date: 2026-12-02 11:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '5e0a9c3d7b12'
down_revision = 'd9f0e1a2b3c4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('require_pushed_authorization_requests', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('request_object_signing_alg', sa.String(length=10),
                                      nullable=True))
        batch_op.add_column(sa.Column('strict_request_objects', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
    op.create_table(
        'oauth_par',
        sa.Column('reference_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.Column('used_at', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('reference_hash'))
    with op.batch_alter_table('oauth_par', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_par_expires_at'), ['expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oauth_par', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_par_expires_at'))
    op.drop_table('oauth_par')
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('strict_request_objects')
        batch_op.drop_column('request_object_signing_alg')
        batch_op.drop_column('require_pushed_authorization_requests')
