"""tokens.origin loses the server default that 0004 needed to fill existing rows: the table
definition (lut_server/schema.py) sets it on insert, and a default in two places drifts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tokens') as batch:
        batch.alter_column('origin', existing_type=sa.String(length=16), existing_nullable=False,
                           server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('tokens') as batch:
        batch.alter_column('origin', existing_type=sa.String(length=16), existing_nullable=False,
                           server_default='api')
