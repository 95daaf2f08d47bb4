"""access log and token lifetimes: api_tokens get expires_at, last_used_at, rotated_from; access_log

Revision ID: 0007
Revises: 0006

Tokens issued before this migration get a full lifetime from now (12 months, 24 for devices), rather than
expiring at once or never.
"""

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rotated_from', sa.Integer(), nullable=True))
    now = datetime.now(timezone.utc)
    tokens = sa.table('api_tokens', sa.column('role', sa.String), sa.column('expires_at', sa.DateTime(timezone=True)))
    naive = op.get_bind().dialect.name == 'sqlite'  # SQLite keeps UTC text without an offset (storage/utc_datetime.py)
    for devices, days in ((True, 730), (False, 365)):
        until = now + timedelta(days=days)
        op.execute(tokens.update()
                   .where((tokens.c.role == 'device') if devices else (tokens.c.role != 'device'))
                   .where(tokens.c.expires_at.is_(None))
                   .values(expires_at=until.replace(tzinfo=None) if naive else until))
    op.create_table('access_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('who', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_access_log_at', 'access_log', ['at'], unique=False)
    op.create_index('ix_access_log_unit_at', 'access_log', ['unit', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_access_log_unit_at', table_name='access_log')
    op.drop_index('ix_access_log_at', table_name='access_log')
    op.drop_table('access_log')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('rotated_from')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('expires_at')
