"""validations keep the per-op in-context times a backend attributed inside the whole network, and
the backend's provenance of the network's timing (clocks right after it, graphs, enqueue time)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('validations') as batch:
        batch.add_column(sa.Column('in_context', sa.Text(), nullable=True))
        batch.add_column(sa.Column('env', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('validations') as batch:
        batch.drop_column('env')
        batch.drop_column('in_context')
