"""measurement planned by the predictor: a plan per (target, space, resolution) and the ops it chose

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 10:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'measure_plans',
        sa.Column('id', Id, nullable=False),
        sa.Column('target_id', Id, nullable=False),
        sa.Column('space', sa.Text(), nullable=False),
        sa.Column('resolution', sa.String(length=32), nullable=False),
        sa.Column('budget', sa.Integer(), nullable=False),
        sa.Column('spent', sa.Integer(), nullable=False),
        sa.Column('bound', sa.Float(), nullable=False),
        sa.Column('batch', sa.Integer(), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('worst', sa.Float(), nullable=True),
        sa.Column('batches', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_measure_plans_target_id_targets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_measure_plans')),
        sa.UniqueConstraint('target_id', 'space', 'resolution', name='uq_measure_plans_target_space_res'),
    )
    op.create_table(
        'plan_ops',
        sa.Column('plan_id', Id, nullable=False),
        sa.Column('op_id', Id, nullable=False),
        sa.Column('batch', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['plan_id'], ['measure_plans.id'], name=op.f('fk_plan_ops_plan_id_measure_plans')),
        sa.ForeignKeyConstraint(['op_id'], ['ops.id'], name=op.f('fk_plan_ops_op_id_ops')),
        sa.PrimaryKeyConstraint('plan_id', 'op_id', name=op.f('pk_plan_ops')),
    )


def downgrade() -> None:
    op.drop_table('plan_ops')
    op.drop_table('measure_plans')
