"""clients: ids of deleted clients (never reused); initial access tokens: ops policy;
client keys: symmetric keys and private members removed from stored JWK Sets

Revision ID: 4b7e2c9d1f30
Revises: e8c4b2a6d0f1
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '4b7e2c9d1f30'
down_revision = 'e8c4b2a6d0f1'
branch_labels = None
depends_on = None

#: members of a public RSA, EC or OKP key (others, private ones first, are dropped)
PUBLIC = {"kty", "kid", "use", "alg", "key_ops", "x5c", "x5t", "x5t#S256", "n", "e", "crv",
          "x", "y"}
PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def upgrade() -> None:
    op.create_table(
        'oauth_client_deleted',
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('deleted_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('client_id'),
    )
    with op.batch_alter_table('access_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy', sa.JSON(), nullable=True))
    _public_keys_only()


def _public_keys_only() -> None:
    """A stored JWK Set keeps only public asymmetric keys (a symmetric key's secret, or a
    private key sent by mistake, was stored and shown back)."""
    clients = sa.table('oauth_client', sa.column('client_id', sa.String),
                       sa.column('jwks', sa.JSON))
    connection = op.get_bind()
    for client_id, jwks in connection.execute(
            sa.select(clients.c.client_id, clients.c.jwks)).all():
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            continue
        keys = [{m: v for m, v in key.items() if m in PUBLIC} for key in jwks["keys"]
                if isinstance(key, dict) and key.get("kty") in ("RSA", "EC", "OKP")
                and not PRIVATE & set(key)]
        if keys != jwks["keys"]:
            connection.execute(clients.update().where(clients.c.client_id == client_id)
                               .values(jwks={"keys": keys}))


def downgrade() -> None:
    with op.batch_alter_table('access_key', schema=None) as batch_op:
        batch_op.drop_column('policy')
    op.drop_table('oauth_client_deleted')
