"""Reads for the live dashboard: what the boards are doing now, how fast the queue drains, and each
board's own median per op (the fleet view). Read-only; the tables belong to their own store modules."""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Connection, func, select

from lut_server.schema import devices, jobs, measurements, ops, targets


def last_posts(conn: Connection) -> Dict[str, Tuple[float, int]]:
    """Per board: (time of its newest measurement, how many measurements it posted)."""
    q = select(measurements.c.device, func.max(measurements.c.received_at), func.count()).group_by(
        measurements.c.device)
    return {r[0]: (float(r[1]), int(r[2])) for r in conn.execute(q)}


def held_jobs(conn: Connection) -> Dict[str, List[Dict[str, Any]]]:
    """Claimed jobs by holder, with the op (or "validate") and the lease; ``touched`` is the last claim or
    heartbeat (both move ``updated_at``)."""
    q = (select(jobs.c.id, jobs.c.claimed_by, jobs.c.kind, targets.c.tid, ops.c.key, jobs.c.lease_expires_at,
                jobs.c.updated_at)
         .join(targets, targets.c.id == jobs.c.target_id).outerjoin(ops, ops.c.id == jobs.c.op_id)
         .where(jobs.c.status == "claimed").order_by(jobs.c.id).limit(5000))
    out: Dict[str, List[Dict[str, Any]]] = {}
    for r in conn.execute(q):
        out.setdefault(r[1], []).append({"id": int(r[0]), "kind": r[2], "target": r[3], "key": r[4],
                                         "lease_expires_at": r[5], "touched": r[6]})
    return out


def boards(conn: Connection) -> List[Dict[str, Any]]:
    q = select(devices.c.name, devices.c.device_class, devices.c.fingerprint_digest, devices.c.fingerprint,
               devices.c.registered_at, devices.c.updated_at).order_by(devices.c.name)
    return [dict(r) for r in conn.execute(q).mappings()]


def done_since(conn: Connection, since: float) -> Dict[str, int]:
    """Per target id: op jobs that reached ``done`` at or after ``since`` (the queue's drain rate)."""
    q = (select(targets.c.tid, func.count()).join(targets, targets.c.id == jobs.c.target_id)
         .where(jobs.c.status == "done", jobs.c.kind == "op", jobs.c.updated_at >= since).group_by(targets.c.tid))
    return {r[0]: int(r[1]) for r in conn.execute(q)}


def target_ids(conn: Connection, device_class: Optional[str] = None) -> List[Tuple[int, str]]:
    """(id, tid) of every target, or of one device class's (the first part of the id)."""
    q = select(targets.c.id, targets.c.tid).order_by(targets.c.tid)
    if device_class is not None:
        q = q.where(targets.c.tid.like(device_class.replace("%", r"\%").replace("_", r"\_") + "/%", escape="\\"))
    return [(int(r[0]), r[1]) for r in conn.execute(q)]


def board_medians(conn: Connection, target_id: int, limit: int = 200_000) -> Dict[str, Dict[str, float]]:
    """Per op key, per board: the median of that board's run medians (quarantined runs left out), the
    first level of the rule that makes the LUT value (store/entries.py)."""
    q = (select(ops.c.key, measurements.c.device, measurements.c.median_ms)
         .join(ops, ops.c.id == measurements.c.op_id)
         .where(measurements.c.target_id == target_id, measurements.c.quarantined_at.is_(None)).limit(limit))
    runs: Dict[str, Dict[str, List[float]]] = {}
    for key, dev, ms in conn.execute(q):
        runs.setdefault(key, {}).setdefault(dev, []).append(float(ms))
    return {k: {d: statistics.median(v) for d, v in per.items()} for k, per in runs.items()}
