"""directory: stored professional claims

Each active practitioner's ``scope_all`` claims, stored ready to serve as JSON text
(``directory_document``, ``psc_idp.directory.document``), built here for the practitioners
already imported: userinfo serves them without a new import. On PostgreSQL built with lz4,
the documents (about 2.7 kB, over the TOAST threshold: each one is compressed) are compressed
with lz4 rather than pglz: half the server's time per document written.

Revision ID: c3f39e2a7b01
Revises: b2e28d1f6fa0
Create Date: 2026-12-01 06:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'c3f39e2a7b01'
down_revision = 'b2e28d1f6fa0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'directory_document',
        sa.Column('id_nat', sa.String(length=40), nullable=False),
        sa.Column('claims', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['id_nat'], ['directory_practitioner.id_nat'],
                                name=op.f('fk_directory_document_id_nat_directory_practitioner'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id_nat', name=op.f('pk_directory_document')),
    )
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql' and bind.execute(sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
            "WHERE name = 'default_toast_compression'")).scalar():
        op.execute('ALTER TABLE directory_document ALTER COLUMN claims SET COMPRESSION lz4')
    from psc_idp.directory.document import rebuild

    rebuild(bind)


def downgrade() -> None:
    op.drop_table('directory_document')
