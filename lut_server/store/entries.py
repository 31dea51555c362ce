"""LUT entries: the value of (target, op) derived from its runs; the only writer of ``lut_entries``.

The aggregation rule (docs/server.md, "How an entry is computed") is ``lutcore.lutdoc.aggregate``,
the one every reader of an export document applies too: per board the median of its run medians,
then the median over boards; quarantined runs are left out.

Concurrency: the entries of an ingest are recomputed after its rows are inserted, under a lock per
(target, op) (PostgreSQL ``pg_advisory_xact_lock``, taken in key order so writers cannot deadlock;
SQLite has one writer), so the aggregate reads every run committed before it: no lost updates.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from sqlalchemy import Connection, bindparam, func, select, text

from lut_server.schema import lut_entries, measurements, ops
from lut_server.store.registry import op_ids, target_row
from lut_server.util import now, upsert
from lutcore.lutdoc import ENTRY_FIELD, Run, aggregate

METRIC_COLUMN = ENTRY_FIELD


def lock_keys(target_id: int, op_id_list: Iterable[int]) -> List[int]:
    """One signed 64-bit advisory-lock key per (target, op)."""
    return sorted({((target_id & 0x7FFFFFFF) << 32 | (op_id & 0xFFFFFFFF)) for op_id in op_id_list})


def lock(conn: Connection, target_id: int, op_id_list: Iterable[int]) -> None:
    """Serialize recomputation of these entries with other transactions (PostgreSQL), in key order."""
    if conn.dialect.name != "postgresql":
        return
    stmt = text("SELECT count(pg_advisory_xact_lock(k)) "
                "FROM (SELECT unnest(CAST(:keys AS BIGINT[])) AS k ORDER BY 1) s")
    keys = lock_keys(target_id, op_id_list)
    for i in range(0, len(keys), 900):
        conn.execute(stmt.bindparams(bindparam("keys", keys[i : i + 900])))


def refresh_entries(conn: Connection, target_id: int, op_id_list: Iterable[int]) -> None:
    """Recompute the LUT entries of these ops from their runs that are not quarantined; an op with no
    counted run loses its entry."""
    wanted = sorted(set(op_id_list))
    lock(conn, target_id, wanted)
    rows: List[Dict[str, Any]] = []
    gone: List[int] = []
    t = now()
    for i in range(0, len(wanted), 900):
        part = wanted[i : i + 900]
        runs: Dict[int, List[Run]] = {}
        m = measurements.c
        q = select(m.op_id, m.median_ms, m.mean_ms, m.p10_ms, m.p90_ms, m.device).where(
            m.target_id == target_id, m.op_id.in_(part), m.quarantined_at.is_(None))
        for op_id, med, mean, p10, p90, dev in conn.execute(q):
            runs.setdefault(int(op_id), []).append(Run(med, mean, p10, p90, dev))
        for op_id in part:
            if op_id in runs:
                rows.append({"target_id": target_id, "op_id": op_id, **aggregate(runs[op_id]), "updated_at": t})
            else:
                gone.append(op_id)
    upsert(conn, lut_entries, rows, ["target_id", "op_id"])
    for i in range(0, len(gone), 900):
        conn.execute(lut_entries.delete().where(lut_entries.c.target_id == target_id,
                                                lut_entries.c.op_id.in_(gone[i : i + 900])))


def delete_for_target(conn: Connection, target_id: int) -> None:
    conn.execute(lut_entries.delete().where(lut_entries.c.target_id == target_id))


def entry_view(row: Any, metric: str = "median_ms") -> Dict[str, Any]:
    return {
        "value_ms": row[METRIC_COLUMN[metric]],
        "median_ms": row["value_ms"],
        "mean_ms": row["mean_ms"],
        "p10_ms": row["p10_ms"],
        "p90_ms": row["p90_ms"],
        "n_runs": row["n_runs"],
        "n_devices": row["n_devices"],
        "spread_pct": row["spread_pct"],
    }


def entries_by_key(conn: Connection, target_id: int, keys: List[str], metric: str) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for i in range(0, len(keys), 900):
        part = keys[i : i + 900]
        q = (select(ops.c.key, lut_entries).join(lut_entries, lut_entries.c.op_id == ops.c.id)
             .where(lut_entries.c.target_id == target_id, ops.c.key.in_(part)))
        for r in conn.execute(q).mappings():
            out[r["key"]] = entry_view(r, metric)
    return out


def lookup(conn: Connection, tid: str, keys: List[str], metric: str = "median_ms") -> Dict[str, Any]:
    """Values of the measured keys and an explicit ``missing`` list (never a silent zero)."""
    uniq = list(dict.fromkeys(keys))
    got = target_row(conn, tid)
    values: Dict[str, Dict[str, Any]] = {}
    version = 0
    if got is not None:
        values = entries_by_key(conn, got[0], uniq, metric)
        version = got[1]
    return {"target": tid, "lut_version": version, "values": values, "missing": [k for k in uniq if k not in values]}


def measured_specs(conn: Connection, target_id: int, metric: str, limit: int) -> List[Tuple[str, float]]:
    """(spec JSON, metric value) of the target's entries, at most ``limit`` of them (by key: the same
    ones for the same LUT), for fitting its predictor."""
    col = lut_entries.c[METRIC_COLUMN[metric]]
    q = (select(ops.c.spec, col).join(lut_entries, lut_entries.c.op_id == ops.c.id)
         .where(lut_entries.c.target_id == target_id).order_by(ops.c.key).limit(limit))
    return [(str(s), float(v)) for s, v in conn.execute(q)]


def measured_op_ids(conn: Connection, target_id: int, keys: List[str]) -> Dict[str, int]:
    """Of these keys, those with a LUT entry for the target, with their op ids."""
    ids = op_ids(conn, keys)
    if not ids:
        return {}
    have: Set[int] = set()
    vals = list(ids.values())
    for i in range(0, len(vals), 900):
        q = select(lut_entries.c.op_id).where(lut_entries.c.target_id == target_id,
                                              lut_entries.c.op_id.in_(vals[i : i + 900]))
        have.update(int(r[0]) for r in conn.execute(q))
    return {k: v for k, v in ids.items() if v in have}


def counts_by_target(conn: Connection) -> Dict[int, int]:
    """Ops with an entry, per target row id."""
    return {int(t): int(n) for t, n in conn.execute(select(lut_entries.c.target_id, func.count())
                                                    .group_by(lut_entries.c.target_id)).all()}


def with_ops(conn: Connection, target_id: int) -> List[Dict[str, Any]]:
    """The target's entries joined with their op rows, by key (export)."""
    e = lut_entries.c
    q = (select(ops, e.value_ms, e.mean_ms, e.p10_ms, e.p90_ms, e.spread_pct, e.n_runs, e.n_devices)
         .join(lut_entries, lut_entries.c.op_id == ops.c.id)
         .where(lut_entries.c.target_id == target_id).order_by(ops.c.key))
    return [dict(r) for r in conn.execute(q).mappings()]


def newest_update(conn: Connection, target_id: int, keys: List[str]) -> Optional[float]:
    """When the newest entry among these keys last changed (None: none has an entry)."""
    newest: Optional[float] = None
    for i in range(0, len(keys), 900):
        q = (select(func.max(lut_entries.c.updated_at)).join(ops, ops.c.id == lut_entries.c.op_id)
             .where(lut_entries.c.target_id == target_id, ops.c.key.in_(keys[i:i + 900])))
        v = conn.execute(q).scalar()
        if v is not None:
            newest = max(newest or v, v)
    return newest


def values_by_key(conn: Connection, target_id: int, keys: Optional[List[str]] = None) -> Dict[str, float]:
    """Op key -> LUT value (ms) of the target's entries: all of them, or those among ``keys``."""
    if keys is not None:
        got = entries_by_key(conn, target_id, keys, "median_ms")
        return {k: float(e["value_ms"]) for k, e in got.items() if e["value_ms"] is not None}
    q = (select(ops.c.key, lut_entries.c.value_ms).join(lut_entries, lut_entries.c.op_id == ops.c.id)
         .where(lut_entries.c.target_id == target_id))
    return {str(k): float(v) for k, v in conn.execute(q) if v is not None}
