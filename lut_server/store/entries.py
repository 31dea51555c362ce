"""LUT entries: the value of (target, op) derived from its runs; the only writer of ``lut_entries``.

The aggregation rule (docs/server.md, "How an entry is computed"): every run (one ``run_id``, one
board) gives a median. Quarantined runs are left out. Per board, the value is the median of that
board's run medians; the entry's value is the median over boards. So one board posting many runs,
or a few fabricated run ids, moves the value no more than one board can. ``spread_pct`` is
(max - min) of the run medians relative to the value; mean, p10 and p90 follow the same two-level
median (mean: mean of the per-board means).

Concurrency: the entries of an ingest are recomputed after its rows are inserted, under a lock per
(target, op) (PostgreSQL ``pg_advisory_xact_lock``, taken in key order so writers cannot deadlock;
SQLite has one writer), so the aggregate reads every run committed before it: no lost updates.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import Connection, bindparam, func, select, text

from lut_server.schema import lut_entries, measurements, ops
from lut_server.store.registry import op_ids, target_row
from lut_server.util import now, upsert

METRIC_COLUMN = {"median_ms": "value_ms", "mean_ms": "mean_ms", "p10_ms": "p10_ms", "p90_ms": "p90_ms"}
Run = Tuple[float, float, float, float, str]  # median, mean, p10, p90, device


def _two_level(runs: List[Run], i: int, avg: Any = statistics.median) -> float:
    by_device: Dict[str, List[float]] = {}
    for r in runs:
        by_device.setdefault(r[4], []).append(r[i])
    return float(statistics.median(avg(v) for v in by_device.values()))


def aggregate(runs: List[Run]) -> Dict[str, Any]:
    """Entry fields from (median, mean, p10, p90, device) of every counted run that timed the op."""
    medians = [r[0] for r in runs]
    value = _two_level(runs, 0)
    spread = (max(medians) - min(medians)) / value * 100.0 if len(medians) > 1 else 0.0
    return {
        "value_ms": value,
        "mean_ms": _two_level(runs, 1, statistics.fmean),
        "p10_ms": _two_level(runs, 2),
        "p90_ms": _two_level(runs, 3),
        "n_runs": len(runs),
        "n_devices": len({r[4] for r in runs}),
        "spread_pct": spread,
    }


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
            runs.setdefault(int(op_id), []).append((med, mean, p10, p90, dev))
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


def measured_op_ids(conn: Connection, target_id: int, keys: List[str]) -> Dict[str, int]:
    """Of these keys, those with a LUT entry for the target, with their op ids."""
    ids = op_ids(conn, keys)
    if not ids:
        return {}
    have = set()
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
    q = (select(ops, lut_entries.c.value_ms, lut_entries.c.spread_pct, lut_entries.c.n_runs)
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
