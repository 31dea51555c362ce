"""shared service: one open job per (target, op), token classes, quarantine, space names, audit

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 04:40:00

Agent tokens created before this revision have no device class (NULL): they keep writing for any
class until reissued with `lut token create --device NAME --device-class CLASS` (docs/server.md).
Duplicate open jobs left by the old check-then-insert registration are cancelled (the oldest stays).
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
OPEN = "op_id IS NOT NULL AND status IN ('queued', 'claimed', 'parked')"
OPEN_VALIDATE = "kind = 'validate' AND status IN ('queued', 'claimed')"


def upgrade() -> None:
    with op.batch_alter_table('tokens') as batch:
        batch.add_column(sa.Column('device_class', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('origin', sa.String(length=16), nullable=False, server_default='api'))
    op.execute("UPDATE tokens SET origin = 'env' WHERE note = 'from environment'")
    op.execute("UPDATE tokens SET prefix = substr(prefix, 1, 4) WHERE origin = 'env'")  # a chosen secret's prefix
    with op.batch_alter_table('measurements') as batch:
        batch.add_column(sa.Column('quarantined_at', sa.Float(), nullable=True))
    op.execute(
        "UPDATE jobs SET status = 'cancelled', last_error = 'duplicate open job (migration 0004)' "
        f"WHERE {OPEN} AND id NOT IN (SELECT MIN(id) FROM jobs WHERE {OPEN} GROUP BY target_id, op_id)")
    with op.batch_alter_table('jobs') as batch:  # before the partial indexes: batch mode may copy the table
        batch.add_column(sa.Column('dedupe', sa.String(length=64), nullable=True))
    op.create_index('uq_jobs_open_op', 'jobs', ['target_id', 'op_id'], unique=True,
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    _dedupe_validate_jobs()
    op.create_index('uq_jobs_open_validate', 'jobs', ['target_id', 'dedupe'], unique=True,
                    postgresql_where=sa.text(OPEN_VALIDATE), sqlite_where=sa.text(OPEN_VALIDATE))
    op.create_table(
        'space_definitions',
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('definition', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_space_definitions')),
    )
    op.create_table(
        'audit',
        sa.Column('id', Id, nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit')),
    )
    op.create_index('ix_audit_at', 'audit', ['at'])
    _bind_space_names()


def _dedupe_validate_jobs() -> None:
    """Validate jobs get the digest of their payload; of identical open ones the oldest stays."""
    import hashlib

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, target_id, payload, status FROM jobs WHERE kind = 'validate' ORDER BY id"))
    seen = set()
    for jid, target_id, payload, status in rows.all():
        digest = hashlib.sha256((payload or "").encode("utf-8")).hexdigest()
        dup = status in ("queued", "claimed") and (target_id, digest) in seen
        if status in ("queued", "claimed"):
            seen.add((target_id, digest))
        conn.execute(sa.text("UPDATE jobs SET dedupe = :d" + (", status = 'cancelled'" if dup else "") +
                             " WHERE id = :i"), {"d": digest, "i": jid})


def _bind_space_names() -> None:
    """Existing custom definitions: each name keeps its newest definition."""
    import hashlib
    import time

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT name, definition FROM spaces WHERE definition IS NOT NULL ORDER BY id"))
    newest = {name: d for name, d in rows}
    t = time.time()
    for name, d in newest.items():
        conn.execute(sa.text("INSERT INTO space_definitions (name, digest, definition, created_at) "
                             "VALUES (:n, :g, :d, :t)"),
                     {"n": name[:256], "g": hashlib.sha256(d.encode("utf-8")).hexdigest(), "d": d, "t": t})


def downgrade() -> None:
    op.drop_index('ix_audit_at', table_name='audit')
    op.drop_table('audit')
    op.drop_table('space_definitions')
    op.drop_index('uq_jobs_open_validate', table_name='jobs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('dedupe')
    op.drop_index('uq_jobs_open_op', table_name='jobs')
    op.execute("UPDATE jobs SET status = 'done' WHERE status = 'cancelled'")
    with op.batch_alter_table('measurements') as batch:
        batch.drop_column('quarantined_at')
    with op.batch_alter_table('tokens') as batch:
        batch.drop_column('origin')
        batch.drop_column('device_class')
