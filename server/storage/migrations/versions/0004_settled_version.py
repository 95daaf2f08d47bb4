"""unit_activity.settled_version: a version that only late events bump (the figure cache's key for settled periods)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('unit_activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled_version', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('unit_activity', schema=None) as batch_op:
        batch_op.drop_column('settled_version')
