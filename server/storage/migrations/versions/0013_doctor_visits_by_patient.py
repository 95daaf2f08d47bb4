"""doctor visits by patient: an index continuity's 18-month sums read in (unit, patient) order

Revision ID: 0013
Revises: 0012

Expand only: an index (server/figures/continuity_sums.py). It holds every column the sums read, so
they never touch the table, and its order is the order they group by.
"""

from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_doctor_visits_unit_patient', 'doctor_visits', ['unit', 'patient', 'practitioner', 'day', 'at_us'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_doctor_visits_unit_patient', table_name='doctor_visits')
