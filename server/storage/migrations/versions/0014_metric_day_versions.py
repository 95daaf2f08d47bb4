"""metric day versions: per unit, UTC date and metric, the version of the last commit that stored an
event of that metric there

Revision ID: 0014
Revises: 0013

Expand only: nullable columns, no backfill. A row without them, or bumped by a process of the
previous release since they were written (`version` newer than `metrics_version`), counts its
`version` for every metric, as before (server/figures/store.py, "Dependency versions").
"""

import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

COLUMNS = ('metrics_version', 'telephone_version', 'assessment_version', 'fixed_doctor_version', 'continuity_version')


def upgrade() -> None:
    with op.batch_alter_table('unit_day_versions') as table:
        for name in COLUMNS:
            table.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('unit_day_versions') as table:
        for name in reversed(COLUMNS):
            table.drop_column(name)
