"""alerts delivery and source health

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 03:33:07.500822
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get server defaults so that the new NOT NULL columns can be added.
    op.create_table('alert_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('expert_id', sa.Integer(), nullable=True),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], ),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], ),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_decision_alert_id'), ['alert_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_decision_at'), ['at'], unique=False)

    op.create_table('notification_alert',
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], ),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], ),
    sa.PrimaryKeyConstraint('notification_id', 'alert_id')
    )
    with op.batch_alter_table('notification_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_alert_alert_id'), ['alert_id'], unique=False)

    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))

    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('country_iso3', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True))
        batch_op.add_column(sa.Column('group_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('value', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('notified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('clear_streak', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.add_column(sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()))
        batch_op.create_index(batch_op.f('ix_alert_country_iso3'), ['country_iso3'], unique=False)

    with op.batch_alter_table('channel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('consecutive_failures', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.add_column(sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()))

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='alert'))
        batch_op.add_column(sa.Column('group_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))

    with op.batch_alter_table('silence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()))

    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_success_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
        batch_op.add_column(sa.Column('stale_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.drop_column('stale_since')
        batch_op.drop_column('last_error')
        batch_op.drop_column('last_error_at')
        batch_op.drop_column('last_success_at')
        batch_op.drop_column('last_attempt_at')

    with op.batch_alter_table('silence', schema=None) as batch_op:
        batch_op.drop_column('created_at')

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('group_key')
        batch_op.drop_column('kind')

    with op.batch_alter_table('channel', schema=None) as batch_op:
        batch_op.drop_column('created_at')
        batch_op.drop_column('consecutive_failures')
        batch_op.drop_column('disabled_at')

    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_country_iso3'))
        batch_op.drop_column('updated_at')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('clear_streak')
        batch_op.drop_column('notified_at')
        batch_op.drop_column('value')
        batch_op.drop_column('group_key')
        batch_op.drop_column('country_iso3')

    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.drop_column('via')

    with op.batch_alter_table('notification_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_alert_alert_id'))

    op.drop_table('notification_alert')
    with op.batch_alter_table('alert_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_decision_at'))
        batch_op.drop_index(batch_op.f('ix_alert_decision_alert_id'))

    op.drop_table('alert_decision')
