"""row versions: per call and case row, the unit version of the last commit that merged into it, and
per unit a count of the commits that set it

Revision ID: 0015
Revises: 0014

Expand only. Rows stored before have no version; a process of the previous release neither sets one
nor counts its commits in `unit_activity.row_versions`, which is how a reader of changed rows knows
that it must read them all again (server/figures/kept_ledgers.py).
"""

import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('calls', 'cases'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('version', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('unit_activity') as batch:
        batch.add_column(sa.Column('row_versions', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('unit_activity') as batch:
        batch.drop_column('row_versions')
    for table in ('cases', 'calls'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('version')
