"""Engines and transactions for SQLite (default, WAL) and PostgreSQL, plus schema upgrades.

SQLite: writes run under ``BEGIN IMMEDIATE`` (one writer at a time, taken up front, so a
read-then-write transaction never fails with a lock upgrade); reads use a separate engine
with plain ``BEGIN`` so they run beside the writer in WAL mode.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

T = TypeVar("T")
RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
MAX_TRIES = 4


def is_retryable(exc: BaseException) -> bool:
    """A transaction the database aborted to break a deadlock or a serialization conflict."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state in RETRY_SQLSTATES


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_DB = "sqlite:///lut.db"


def normalize_url(url: str) -> str:
    """Accept ``postgresql://``/``postgres://`` (use psycopg 3) and bare file paths (SQLite)."""
    if "://" not in url:
        return "sqlite:///" + str(Path(url).expanduser().resolve())
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_url() -> str:
    return os.environ.get("LUT_DB") or os.environ.get("DATABASE_URL") or DEFAULT_DB


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=8, max_overflow=32)

    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return eng


class Database:
    """The two engines (read, write) over one URL."""

    def __init__(self, url: Optional[str] = None) -> None:
        self.url = normalize_url(url or default_url())
        u = make_url(self.url)
        self.dialect = u.get_backend_name()
        if self.dialect == "sqlite":
            if u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(self.url, immediate=True)
            self.read_engine = _sqlite_engine(self.url, immediate=False)
        else:
            self.write_engine = create_engine(self.url, pool_size=10, max_overflow=10, pool_timeout=60,
                                              pool_pre_ping=True)
            self.read_engine = self.write_engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.write_engine.begin() as conn:
            yield conn

    def transact(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction; re-run it (bounded, with jitter) when PostgreSQL aborts
        it for a deadlock or serialization failure. ``fn`` must have no effect outside the database."""
        from sqlalchemy.exc import DBAPIError

        for attempt in range(1, MAX_TRIES + 1):
            try:
                with self.write() as conn:
                    return fn(conn)
            except DBAPIError as e:
                if attempt == MAX_TRIES or not is_retryable(e):
                    raise
                time.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.read_engine.begin() as conn:
            yield conn

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        upgrade(self)

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()

    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)


def alembic_config(db: Database) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database) -> None:
    from alembic import command

    cfg = alembic_config(db)
    with db.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        if conn.in_transaction():
            conn.commit()
