"""figure day parts: per unit, metric and local day, the parts telephone and assessment figures sum

Revision ID: 0008
Revises: 0010
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0008'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('figure_day_parts',
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('parts_version', sa.BigInteger(), nullable=True),
    sa.Column('settings', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('latest_us', sa.BigInteger(), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('unit', 'metric', 'day')
    )
    op.create_index('ix_cases_unit_assessed', 'cases', ['unit', 'assessed'], unique=False)
    # Backfill: every day that rows are anchored at gets a row (version 1, no parts yet); the first
    # reader computes its parts. A day without a row is read as "nothing anchored here".
    for metric, table, columns in (('telephone', 'calls', ('offered_day', 'rejected_day')), ('assessment', 'cases', ('contact_day', 'assessed_day'))):
        anchored = ' UNION '.join(f'SELECT unit, {column} AS day FROM {table} WHERE {column} IS NOT NULL' for column in columns)
        op.execute(f"INSERT INTO figure_day_parts (unit, metric, day, version) SELECT unit, '{metric}', day, 1 FROM ({anchored}) AS anchored")


def downgrade() -> None:
    op.drop_index('ix_cases_unit_assessed', table_name='cases')
    op.drop_table('figure_day_parts')
