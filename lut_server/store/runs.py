"""Quarantine of runs and deletion of targets: the operations that take data out of the LUT."""

from __future__ import annotations

from typing import Dict, List, Optional

from sqlalchemy import Connection, select, update

from lut_server.schema import calibrations, measurements, spaces, targets, validations
from lut_server.store import entries, jobs
from lut_server.util import now


def set_quarantine(conn: Connection, target_id: int, run_id: str, on: bool) -> List[int]:
    """Quarantine (or restore) every measurement of the run on the target and recompute their entries.
    Returns the op ids touched (empty: no such run)."""
    m = measurements.c
    res = conn.execute(update(measurements).where(m.target_id == target_id, m.run_id == run_id)
                       .values(quarantined_at=now() if on else None).returning(m.op_id))
    op_ids = sorted(int(r[0]) for r in res)
    if op_ids:
        entries.refresh_entries(conn, target_id, op_ids)
    return op_ids


def delete_target(conn: Connection, target_id: int) -> Dict[str, int]:
    """Everything stored for the target; ops, devices and other targets stay."""
    counts: Dict[str, int] = {"jobs": jobs.delete_for_target(conn, target_id)}
    entries.delete_for_target(conn, target_id)
    for name, table in (("measurements", measurements), ("validations", validations),
                        ("calibrations", calibrations), ("spaces", spaces)):
        counts[name] = int(conn.execute(table.delete().where(table.c.target_id == target_id)).rowcount or 0)
    conn.execute(targets.delete().where(targets.c.id == target_id))
    return counts


def target_id_of(conn: Connection, tid: str) -> Optional[int]:
    v = conn.execute(select(targets.c.id).where(targets.c.tid == tid)).scalar()
    return None if v is None else int(v)
