"""clients: back-channel logout URI; the back-channel logout outbox

Revision ID: 9b1c5e7d3a20
Revises: c3f39e2a7b01
Create Date: 2026-12-02 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '9b1c5e7d3a20'
down_revision = 'c3f39e2a7b01'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backchannel_logout_uri', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('backchannel_logout_session_required', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
    op.create_table(
        'backchannel_logout',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('sid', sa.String(length=64), nullable=False),
        sa.Column('id_nat', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('next_attempt_at', sa.BigInteger(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('claimed_until', sa.BigInteger(), nullable=True),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.Column('done_at', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('backchannel_logout', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backchannel_logout_next_attempt_at'),
                              ['next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('backchannel_logout', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backchannel_logout_next_attempt_at'))
    op.drop_table('backchannel_logout')
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('backchannel_logout_session_required')
        batch_op.drop_column('backchannel_logout_uri')
