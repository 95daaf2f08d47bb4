"""region follow-up: units get ownership, municipality code and listed patients; region benchmarks

Revision ID: 0010
Revises: 0007
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0010'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ownership', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('municipality_code', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True))
        batch_op.add_column(sa.Column('listed_patients', sa.Integer(), nullable=True))
    op.create_table('region_benchmarks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('region', 'metric', 'kind', 'valid_from', name='uq_region_benchmarks')
    )
    with op.batch_alter_table('region_benchmarks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_region_benchmarks_region'), ['region'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('region_benchmarks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_region_benchmarks_region'))
    op.drop_table('region_benchmarks')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('listed_patients')
        batch_op.drop_column('municipality_code')
        batch_op.drop_column('ownership')
