"""The migrations build exactly the tables ``lut_server/schema.py`` defines (SQLite and PostgreSQL):
Alembic's autogenerate, run against a database upgraded to head, must find nothing to add."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table

from lut_server.db import Database
from lut_server.schema import metadata


def _diff(db: Database, target: MetaData) -> list:
    with db.write_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, target)


def test_migrations_match_the_table_definitions(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade()
        assert _diff(db, metadata) == []
    finally:
        db.dispose()


def test_drift_is_seen(db_url: str) -> None:
    """The check can fail: a table the migrations lack shows up as a difference."""
    db = Database(db_url)
    try:
        db.upgrade()
        more = MetaData()
        for table in metadata.tables.values():
            table.to_metadata(more)
        Table("not_migrated", more, Column("id", Integer, primary_key=True))
        diff = _diff(db, more)
        assert [(d[0], d[1].name) for d in diff if d[0] == "add_table"] == [("add_table", "not_migrated")]
    finally:
        db.dispose()
