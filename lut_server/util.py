"""Small helpers shared by the services: strict JSON, clean text, time, dialect-aware upserts."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from typing import Any, Dict, Iterable, List, Sequence

from sqlalchemy import Connection, Table

MAX_TEXT = 4096


class BadInput(ValueError):
    """Input the server refuses; the message names the field and the reason (sent back as 422)."""


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).isoformat().replace("+00:00", "Z")


def dump_json(obj: Any, where: str = "value") -> str:
    """Canonical strict JSON (sorted keys, no NaN/Infinity) so stored blobs render back losslessly."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError) as e:
        raise BadInput(f"{where}: not storable as strict JSON ({e})") from None


MAX_BLOB_BYTES = 16 * 1024
MAX_BLOB_DEPTH = 8


def _too_deep(obj: Any, max_depth: int) -> bool:
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            if d >= max_depth:
                return True
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return False


def bounded_json(obj: Any, where: str, max_bytes: int = MAX_BLOB_BYTES, max_depth: int = MAX_BLOB_DEPTH) -> str:
    """``dump_json`` of a free-form mapping (env, fingerprint) that every export will carry: bounded in
    size and nesting, so one client cannot make every reader pay for a megabyte blob."""
    if _too_deep(obj, max_depth):
        raise BadInput(f"{where}: nested deeper than {max_depth} levels")
    out = dump_json(obj, where)
    if len(out) > max_bytes:
        raise BadInput(f"{where}: {len(out)} bytes as JSON, more than the {max_bytes} allowed")
    return out


def load_json(text: str | None) -> Any:
    return json.loads(text) if text else None


def clean_text(s: Any, where: str, max_len: int = MAX_TEXT) -> str:
    """A string the databases can store: no NUL, valid UTF-8, bounded length."""
    if not isinstance(s, str):
        raise BadInput(f"{where}: must be a string")
    if "\x00" in s:
        raise BadInput(f"{where}: must not contain NUL characters")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{where}: must be valid UTF-8 text") from None
    if len(s) > max_len:
        raise BadInput(f"{where}: longer than {max_len} characters")
    return s


def digest_of(obj: Any) -> str:
    """16 hex digits of SHA-256 over canonical JSON (fingerprints)."""
    return hashlib.sha256(dump_json(obj).encode("utf-8")).hexdigest()[:16]


def insert_ignore(conn: Connection, table: Table, rows: Sequence[Dict[str, Any]], keys: List[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO NOTHING on SQLite and PostgreSQL."""
    if not rows:
        return
    stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt, list(rows))


def insert_returning(conn: Connection, table: Table, rows: Sequence[Dict[str, Any]], keys: List[str],
                     column: Any, where: Any = None) -> List[Any]:
    """INSERT ... ON CONFLICT (keys [WHERE partial index]) DO NOTHING RETURNING column: what this
    transaction inserted, whatever other transactions insert meanwhile."""
    if not rows:
        return []
    stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=keys, index_where=where)
    out: List[Any] = []
    for part in chunks(list(rows), 500):
        out.extend(r[0] for r in conn.execute(stmt.returning(column), list(part)))
    return out


def upsert(conn: Connection, table: Table, rows: Sequence[Dict[str, Any]], keys: List[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE of every other column."""
    if not rows:
        return
    ins = _insert(conn, table)
    cols = [c for c in rows[0] if c not in keys]
    stmt = ins.on_conflict_do_update(index_elements=keys, set_={c: getattr(ins.excluded, c) for c in cols})
    conn.execute(stmt, list(rows))


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_*`` (PostgreSQL's and SQLite's are two types)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
