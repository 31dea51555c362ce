"""The LUT value of (target, op), derived from its measurements, and lookups of many keys at once.

value = median over runs of each run's median; ``spread_pct`` = (max - min) of the run medians
relative to the value, so disagreement between runs and boards is visible next to the number.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, Iterable, List, Tuple

from sqlalchemy import Connection, select

from lut_server.registry import op_ids, target_row
from lut_server.schema import lut_entries, measurements, ops
from lut_server.util import now, upsert

METRIC_COLUMN = {"median_ms": "value_ms", "mean_ms": "mean_ms", "p10_ms": "p10_ms", "p90_ms": "p90_ms"}


def aggregate(runs: List[Tuple[float, float, float, float, str]]) -> Dict[str, Any]:
    """Entry fields from (median, mean, p10, p90, device) of every run that timed the op."""
    medians = [r[0] for r in runs]
    value = statistics.median(medians)
    spread = (max(medians) - min(medians)) / value * 100.0 if len(medians) > 1 else 0.0
    return {
        "value_ms": value,
        "mean_ms": statistics.fmean(r[1] for r in runs),
        "p10_ms": statistics.median(r[2] for r in runs),
        "p90_ms": statistics.median(r[3] for r in runs),
        "n_runs": len(runs),
        "n_devices": len({r[4] for r in runs}),
        "spread_pct": spread,
    }


def refresh_entries(conn: Connection, target_id: int, op_id_list: Iterable[int]) -> None:
    """Recompute the LUT entries of these ops from all their measurements."""
    wanted = sorted(set(op_id_list))
    rows: List[Dict[str, Any]] = []
    t = now()
    for i in range(0, len(wanted), 900):
        part = wanted[i : i + 900]
        runs: Dict[int, List[Tuple[float, float, float, float, str]]] = {}
        m = measurements.c
        q = select(m.op_id, m.median_ms, m.mean_ms, m.p10_ms, m.p90_ms, m.device).where(
            m.target_id == target_id, m.op_id.in_(part))
        for op_id, med, mean, p10, p90, dev in conn.execute(q):
            runs.setdefault(int(op_id), []).append((med, mean, p10, p90, dev))
        for op_id in sorted(runs):
            rows.append({"target_id": target_id, "op_id": op_id, **aggregate(runs[op_id]), "updated_at": t})
    upsert(conn, lut_entries, rows, ["target_id", "op_id"])


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


