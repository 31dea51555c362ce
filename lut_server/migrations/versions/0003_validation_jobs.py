"""validation jobs: a job may name no op (kind 'validate' carries its work in the payload)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('op_id', existing_type=Id, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE op_id IS NULL")
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('op_id', existing_type=Id, nullable=False)
