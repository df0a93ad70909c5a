"""CIBA: requests; clients' token delivery mode and notification endpoint; login
transactions keep the acr and amr their login method handed back

Revision ID: 5e2a9c7b1d40
Revises: 9b1c5e7d3a20
Create Date: 2026-12-02 11:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '5e2a9c7b1d40'
down_revision = '9b1c5e7d3a20'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backchannel_token_delivery_mode', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('backchannel_client_notification_endpoint', sa.Text(), nullable=True))
    with op.batch_alter_table('login_transaction', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acr', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('amr', sa.JSON(), nullable=True))
    op.create_table(
        'ciba_request',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('auth_req_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('client_name', sa.String(length=200), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('id_nat', sa.String(length=40), nullable=False),
        sa.Column('real', sa.Boolean(), nullable=False),
        sa.Column('scope', sa.String(length=400), nullable=False),
        sa.Column('binding_message', sa.String(length=40), nullable=True),
        sa.Column('challenge', sa.String(length=64), nullable=True),
        sa.Column('login_request_id', sa.String(length=40), nullable=True),
        sa.Column('delivery', sa.String(length=10), nullable=False),
        sa.Column('notification_token', sa.Text(), nullable=True),
        sa.Column('ping_status', sa.String(length=10), nullable=True),
        sa.Column('ping_attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('ping_next_at', sa.BigInteger(), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.Column('interval', sa.Integer(), nullable=False),
        sa.Column('last_polled_at', sa.BigInteger(), nullable=True),
        sa.Column('decided_at', sa.BigInteger(), nullable=True),
        sa.Column('method', sa.String(length=10), nullable=True),
        sa.Column('method_detail', sa.String(length=128), nullable=True),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('network', sa.String(length=64), nullable=False),
        sa.Column('acr', sa.String(length=40), nullable=True),
        sa.Column('amr', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('auth_req_hash'))
    with op.batch_alter_table('ciba_request', schema=None) as batch_op:
        for column in ('client_id', 'expires_at', 'id_nat', 'ping_next_at'):
            batch_op.create_index(batch_op.f(f'ix_ciba_request_{column}'), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ciba_request', schema=None) as batch_op:
        for column in ('client_id', 'expires_at', 'id_nat', 'ping_next_at'):
            batch_op.drop_index(batch_op.f(f'ix_ciba_request_{column}'))
    op.drop_table('ciba_request')
    with op.batch_alter_table('login_transaction', schema=None) as batch_op:
        batch_op.drop_column('amr')
        batch_op.drop_column('acr')
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('backchannel_client_notification_endpoint')
        batch_op.drop_column('backchannel_token_delivery_mode')
