"""device config versions: the history of remote config pushed to each device

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No backfill: versions pushed before this migration (admin command only) left no record.
    op.create_table('device_config_versions',
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('device', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sections', sa.Text(), nullable=False),
    sa.Column('pushed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('pushed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('unit', 'device', 'seq')
    )


def downgrade() -> None:
    op.drop_table('device_config_versions')
