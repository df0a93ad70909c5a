"""DPoP (RFC 9449): clients' dpop_bound_access_tokens, the key thumbprint of codes
(dpop_jkt) and tokens (cnf.jkt), the replay cache of proof jtis

Revision ID: d9f0e1a2b3c4
Revises: 5e2a9c7b1d40
Create Date: 2026-12-02 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'd9f0e1a2b3c4'
down_revision = '5e2a9c7b1d40'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_bound_access_tokens', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
    with op.batch_alter_table('oauth_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    op.create_table(
        'dpop_jti',
        sa.Column('jkt', sa.String(length=64), nullable=False),
        sa.Column('jti_hash', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('jkt', 'jti_hash'))
    with op.batch_alter_table('dpop_jti', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dpop_jti_expires_at'), ['expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dpop_jti', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dpop_jti_expires_at'))
    op.drop_table('dpop_jti')
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('oauth_code', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('dpop_bound_access_tokens')
