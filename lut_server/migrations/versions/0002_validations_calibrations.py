"""validations and calibrations (LUT truth)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('validations',
    sa.Column('id', Id, nullable=False),
    sa.Column('target_id', Id, nullable=False),
    sa.Column('space', sa.Text(), nullable=False),
    sa.Column('resolution', sa.String(length=32), nullable=False),
    sa.Column('arch', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('lut_version', sa.Integer(), nullable=True),
    sa.Column('predicted_ms', sa.Float(), nullable=False),
    sa.Column('measured_ms', sa.Float(), nullable=False),
    sa.Column('n_ops', sa.Integer(), nullable=False),
    sa.Column('rounds', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_validations_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_validations')),
    sa.UniqueConstraint('target_id', 'space', 'resolution', 'run_id', 'arch', name='uq_validations_run_arch')
    )
    op.create_index('ix_validations_target_space', 'validations', ['target_id', 'space', 'resolution'], unique=False)
    op.create_table('calibrations',
    sa.Column('id', Id, nullable=False),
    sa.Column('target_id', Id, nullable=False),
    sa.Column('space', sa.Text(), nullable=False),
    sa.Column('resolution', sa.String(length=32), nullable=False),
    sa.Column('calibration', sa.Text(), nullable=False),
    sa.Column('fit', sa.Text(), nullable=False),
    sa.Column('lut_version', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_calibrations_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calibrations')),
    sa.UniqueConstraint('target_id', 'space', 'resolution', name='uq_calibrations_target_space_res')
    )


def downgrade() -> None:
    op.drop_table('calibrations')
    op.drop_index('ix_validations_target_space', table_name='validations')
    op.drop_table('validations')
