"""jobs: alerts, self-audit outcomes, deadline-sweep marks

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('cleared_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit', 'kind', 'subject', name='uq_alerts_unit_kind_subject')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_unit_created_at', ['unit', 'created_at'], unique=False)

    op.create_table('audits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('difference', sa.Text(), nullable=True),
    sa.Column('checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit', 'day', 'metric', name='uq_audits_unit_day_metric')
    )
    op.create_table('sweep_marks',
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('swept_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('data_version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('unit')
    )


def downgrade() -> None:
    op.drop_table('sweep_marks')
    op.drop_table('audits')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_unit_created_at')

    op.drop_table('alerts')
