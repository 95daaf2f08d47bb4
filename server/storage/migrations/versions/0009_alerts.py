"""alerts: rules per unit and region, subscriptions, the delivery outbox; alerts get notified/acknowledged

Revision ID: 0009
Revises: 0008 (the chain runs 0007, 0010, 0008, 0009)

Alerts raised before this migration count as handed out already (`notified_at` = now): nobody is sent
yesterday's alerts on the day this version starts.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by', _S(length=200), nullable=True))
        batch_op.create_index('ix_alerts_notified_at', ['notified_at'], unique=False)
    now = datetime.now(timezone.utc)
    naive = op.get_bind().dialect.name == 'sqlite'  # SQLite keeps UTC text without an offset (storage/utc_datetime.py)
    alerts = sa.table('alerts', sa.column('notified_at', sa.DateTime(timezone=True)))
    op.execute(alerts.update().values(notified_at=now.replace(tzinfo=None) if naive else now))
    op.create_table('alert_rules',
    sa.Column('scope', _S(length=8), nullable=False),
    sa.Column('key', _S(length=100), nullable=False),
    sa.Column('rules', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', _S(length=200), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key')
    )
    op.create_table('alert_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', _S(length=200), nullable=False),
    sa.Column('scope', _S(length=8), nullable=False),
    sa.Column('unit', _S(length=40), nullable=True),
    sa.Column('region', _S(length=100), nullable=True),
    sa.Column('channel', _S(length=8), nullable=False),
    sa.Column('address', _S(length=500), nullable=False),
    sa.Column('secret', _S(length=200), nullable=True),
    sa.Column('kinds', sa.Text(), nullable=True),
    sa.Column('quiet_from', _S(length=5), nullable=True),
    sa.Column('quiet_to', _S(length=5), nullable=True),
    sa.Column('time_zone', _S(length=64), nullable=False),
    sa.Column('digest', sa.Boolean(), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', _S(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('alert_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_key', _S(length=120), nullable=False),
    sa.Column('channel', _S(length=8), nullable=False),
    sa.Column('recipient', _S(length=500), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('unit', _S(length=40), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', _S(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', _S(length=128), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', _S(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_key', 'channel', 'recipient', name='uq_alert_deliveries_message_channel_recipient')
    )
    op.create_index('ix_alert_deliveries_status_next', 'alert_deliveries', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alert_deliveries_status_next', table_name='alert_deliveries')
    op.drop_table('alert_deliveries')
    op.drop_table('alert_subscriptions')
    op.drop_table('alert_rules')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_notified_at')
        batch_op.drop_column('acknowledged_by')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('notified_at')
