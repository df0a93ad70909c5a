"""mTLS (RFC 8705): clients' tls_client_auth certificate fields and
tls_client_certificate_bound_access_tokens, the certificate thumbprint of tokens (cnf.x5t#S256)

Revision ID: f3a8c1d5e7b9
Revises: 7c3e1f9a2b55
Create Date: 2026-12-02 11:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'f3a8c1d5e7b9'
down_revision = '7c3e1f9a2b55'
branch_labels = None
depends_on = None

SAN_FIELDS = ('tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_auth_san_email')


def upgrade() -> None:
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tls_client_auth_subject_dn', sa.Text(), nullable=True))
        for name in SAN_FIELDS:
            batch_op.add_column(sa.Column(name, sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('tls_client_auth_san_ip', sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('tls_client_certificate_bound_access_tokens',
                                      sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('x5t_s256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.drop_column('x5t_s256')
    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('tls_client_certificate_bound_access_tokens')
        batch_op.drop_column('tls_client_auth_san_ip')
        for name in reversed(SAN_FIELDS):
            batch_op.drop_column(name)
        batch_op.drop_column('tls_client_auth_subject_dn')
