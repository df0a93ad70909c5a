"""directory: the columns of PSC's 50- and 51-column extracts

Other identifiers of a practitioner (``Autres identifiants``), identifier type and
identifier of any length (PSI and EDIT identities), the successor of a former idNat
(ADELI → RPPS), and the warnings and links of an import run. The genre d'activité column
already exists (filled with GENR01 until now).

Revision ID: d3f1a9c2b7e4
Revises: b636b8829b60
Create Date: 2026-12-01 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'd3f1a9c2b7e4'
down_revision = 'b636b8829b60'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'directory_other_id',
        sa.Column('id_nat', sa.String(length=40), nullable=False),
        sa.Column('rank', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('identifier', sa.Text(), nullable=False),
        sa.Column('origin', sa.Text(), nullable=False),
        sa.Column('quality', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['id_nat'], ['directory_practitioner.id_nat'],
                                name=op.f('fk_directory_other_id_id_nat_directory_practitioner'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id_nat', 'rank', name=op.f('pk_directory_other_id')),
    )
    with op.batch_alter_table('directory_other_id', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directory_other_id_identifier'), ['identifier'],
                              unique=False)
    with op.batch_alter_table('directory_practitioner', schema=None) as batch_op:
        batch_op.add_column(sa.Column('successor_id_nat', sa.String(length=40), nullable=True))
        batch_op.alter_column('id_type', existing_type=sa.String(length=2), type_=sa.Text(),
                              existing_nullable=False)
        batch_op.alter_column('identifier', existing_type=sa.String(length=40),
                              type_=sa.Text(), existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_directory_practitioner_successor_id_nat'),
                              ['successor_id_nat'], unique=False)
    with op.batch_alter_table('directory_import', schema=None) as batch_op:
        batch_op.add_column(sa.Column('linked', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('warnings', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('directory_import', schema=None) as batch_op:
        batch_op.drop_column('warnings')
        batch_op.drop_column('linked')
    with op.batch_alter_table('directory_practitioner', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directory_practitioner_successor_id_nat'))
        # identifiers longer than the old columns are cut (PostgreSQL refuses them otherwise)
        batch_op.alter_column('identifier', existing_type=sa.Text(),
                              type_=sa.String(length=40), existing_nullable=False,
                              postgresql_using='left(identifier, 40)')
        batch_op.alter_column('id_type', existing_type=sa.Text(), type_=sa.String(length=2),
                              existing_nullable=False, postgresql_using='left(id_type, 2)')
        batch_op.drop_column('successor_id_nat')
    with op.batch_alter_table('directory_other_id', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directory_other_id_identifier'))
    op.drop_table('directory_other_id')
