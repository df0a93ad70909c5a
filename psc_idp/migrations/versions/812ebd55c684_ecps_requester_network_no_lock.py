"""e-CPS: login requests remember the requester's network (the abuse limits count per
network); the per-professional lock is gone (a stranger could lock anyone out)

Revision ID: 812ebd55c684
Revises: 4b7e2c9d1f30
Create Date: 2026-12-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '812ebd55c684'
down_revision = '4b7e2c9d1f30'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ecps_login_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('network', sa.String(length=64), nullable=False,
                                      server_default=''))
    op.drop_table('ecps_lock')


def downgrade() -> None:
    op.create_table('ecps_lock',
                    sa.Column('id_nat', sa.String(length=40), nullable=False),
                    sa.Column('failures', sa.Integer(), nullable=False),
                    sa.Column('locked_until', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('id_nat', name=op.f('pk_ecps_lock')))
    with op.batch_alter_table('ecps_login_request', schema=None) as batch_op:
        batch_op.drop_column('network')
