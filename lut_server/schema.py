"""Database tables (SQLAlchemy Core). Times are epoch seconds (float) so both dialects compare them alike.

JSON blobs are stored as text we serialise ourselves: identical on SQLite and PostgreSQL, and
free of PostgreSQL's jsonb restrictions (e.g. ``\\u0000``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")

targets = Table(
    "targets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tid", Text, nullable=False, unique=True),
    Column("spec", Text, nullable=False),
    Column("lut_version", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("device_class", String(64), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("fingerprint_digest", String(32), nullable=False),
    Column("registered_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

fingerprints = Table(
    "fingerprints",
    metadata,
    Column("id", Id, primary_key=True),
    Column("device_id", Id, ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("first_seen", Float, nullable=False),
    UniqueConstraint("device_id", "digest", name="uq_fingerprints_device_digest"),
)

ops = Table(
    "ops",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("digest", String(16), nullable=False),
    Column("family", String(32), nullable=False),
    Column("spec", Text, nullable=False),
    Column("macs", BigInteger, nullable=False),
    Column("params", BigInteger, nullable=False),
)

measurements = Table(
    "measurements",
    metadata,
    Column("id", Id, primary_key=True),
    Column("target_id", Id, ForeignKey("targets.id"), nullable=False),
    Column("op_id", Id, ForeignKey("ops.id"), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("fingerprint_digest", String(32), nullable=False),
    Column("median_ms", Float, nullable=False),
    Column("mean_ms", Float, nullable=False),
    Column("p10_ms", Float, nullable=False),
    Column("p90_ms", Float, nullable=False),
    Column("stats", Text, nullable=False),
    Column("measured_at", Text, nullable=True),
    Column("env", Text, nullable=False),
    Column("job_id", BigInteger, nullable=True),
    Column("received_at", Float, nullable=False),
    Column("quarantined_at", Float, nullable=True),  # set by an admin: the run no longer counts in entries
    UniqueConstraint("target_id", "op_id", "run_id", name="uq_measurements_target_op_run"),
)

# Derived from measurements on every ingest, so lookups and cost matrices are one indexed read.
lut_entries = Table(
    "lut_entries",
    metadata,
    Column("target_id", Id, ForeignKey("targets.id"), primary_key=True),
    Column("op_id", Id, ForeignKey("ops.id"), primary_key=True),
    Column("value_ms", Float, nullable=False),
    Column("mean_ms", Float, nullable=False),
    Column("p10_ms", Float, nullable=False),
    Column("p90_ms", Float, nullable=False),
    Column("n_runs", Integer, nullable=False),
    Column("n_devices", Integer, nullable=False),
    Column("spread_pct", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

spaces = Table(
    "spaces",
    metadata,
    Column("id", Id, primary_key=True),
    Column("target_id", Id, ForeignKey("targets.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("resolution", String(32), nullable=False),
    Column("definition", Text, nullable=True),
    Column("priority", Integer, nullable=False, default=0),
    Column("registered_at", Float, nullable=False),
    UniqueConstraint("target_id", "name", "resolution", name="uq_spaces_target_name_res"),
)

OPEN_OP_JOB = text("op_id IS NOT NULL AND status IN ('queued', 'claimed', 'parked')")
OPEN_VALIDATE_JOB = text("kind = 'validate' AND status IN ('queued', 'claimed')")

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("target_id", Id, ForeignKey("targets.id"), nullable=False),
    Column("op_id", Id, ForeignKey("ops.id"), nullable=True),  # null for kind "validate"
    Column("kind", String(16), nullable=False, default="op"),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("claimed_by", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("payload", Text, nullable=False, default="{}"),
    Column("dedupe", String(64), nullable=True),  # validate jobs: SHA-256 of the payload
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_jobs_claim", "target_id", "status", "priority", "id"),
    Index("ix_jobs_target_op", "target_id", "op_id"),
    # The database, not the registering code, guarantees one open job per (target, op).
    Index("uq_jobs_open_op", "target_id", "op_id", unique=True, postgresql_where=OPEN_OP_JOB,
          sqlite_where=OPEN_OP_JOB),
    Index("uq_jobs_open_validate", "target_id", "dedupe", unique=True, postgresql_where=OPEN_VALIDATE_JOB,
          sqlite_where=OPEN_VALIDATE_JOB),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("device", String(64), nullable=True),
    Column("device_class", String(64), nullable=True),  # agents: the target device class they write for
    Column("origin", String(16), nullable=False, default="api"),  # api | cli | env (LUT_ADMIN_TOKEN)
    Column("note", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

JOB_STATES = ("queued", "claimed", "done", "parked", "cancelled")
OPEN_JOB_STATES = ("queued", "claimed", "parked")
ROLES = ("admin", "agent", "search", "read")

# A custom space name is bound to the digest of its definition, for every target.
space_definitions = Table(
    "space_definitions",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("definition", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Every admin action: who, what, when.
audit = Table(
    "audit",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", Float, nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", Text, nullable=False),
    Column("detail", Text, nullable=False, default="{}"),
    Index("ix_audit_at", "at"),
)

# LUT truth (issue 6): whole networks timed end to end beside the LUT's prediction, and the
# calibration fitted from them. Space and resolution are kept as text: validations refer to a
# space by name, whether or not it was registered for the target.
validations = Table(
    "validations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("target_id", Id, ForeignKey("targets.id"), nullable=False),
    Column("space", Text, nullable=False),
    Column("resolution", String(32), nullable=False),
    Column("arch", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("lut_version", Integer, nullable=True),
    Column("predicted_ms", Float, nullable=False),
    Column("measured_ms", Float, nullable=False),
    Column("n_ops", Integer, nullable=False),
    Column("rounds", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("in_context", Text, nullable=True),  # JSON {op key: ms inside the network}, when the backend attributes
    Column("env", Text, nullable=True),  # JSON: the backend's provenance of the network timing (clocks, ...)
    UniqueConstraint("target_id", "space", "resolution", "run_id", "arch", name="uq_validations_run_arch"),
    Index("ix_validations_target_space", "target_id", "space", "resolution"),
)

calibrations = Table(
    "calibrations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("target_id", Id, ForeignKey("targets.id"), nullable=False),
    Column("space", Text, nullable=False),
    Column("resolution", String(32), nullable=False),
    Column("calibration", Text, nullable=False),
    Column("fit", Text, nullable=False),
    Column("lut_version", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("target_id", "space", "resolution", name="uq_calibrations_target_space_res"),
)

# Measurement planned by the predictor (issue 20): one plan per (target, space, resolution) spends at most
# ``budget`` ops in batches; ``plan_ops`` holds the ops it chose (``spent`` counts them), so a batch is
# in flight while one of them has a queued or claimed job.
measure_plans = Table(
    "measure_plans",
    metadata,
    Column("id", Id, primary_key=True),
    Column("target_id", Id, ForeignKey("targets.id"), nullable=False),
    Column("space", Text, nullable=False),
    Column("resolution", String(32), nullable=False),
    Column("budget", Integer, nullable=False),
    Column("spent", Integer, nullable=False),
    Column("bound", Float, nullable=False),  # the widest relative interval, (hi - lo) / value, a cell may keep
    Column("batch", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # measuring | met | spent | complete
    Column("worst", Float, nullable=True),  # the widest relative interval of an unmeasured cell at the last fit
    Column("batches", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("target_id", "space", "resolution", name="uq_measure_plans_target_space_res"),
)

plan_ops = Table(
    "plan_ops",
    metadata,
    Column("plan_id", Id, ForeignKey("measure_plans.id"), primary_key=True),
    Column("op_id", Id, ForeignKey("ops.id"), primary_key=True),
    Column("batch", Integer, nullable=False),
)
