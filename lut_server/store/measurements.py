"""Measurements, one row per (target, op, run): inserts that report what they stored, and reads."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from sqlalchemy import Connection, select

from lut_server.schema import measurements
from lut_server.util import insert_returning


def insert(conn: Connection, rows: List[Dict[str, Any]]) -> List[int]:
    """Store the rows a concurrent post of the same run has not; the op ids this call inserted."""
    rows = sorted(rows, key=lambda r: (r["op_id"], r["run_id"]))  # one lock order for every writer
    return [int(v) for v in insert_returning(conn, measurements, rows, ["target_id", "op_id", "run_id"],
                                             measurements.c.op_id)]


def by_op(conn: Connection, target_id: int) -> Dict[int, List[Dict[str, Any]]]:
    """Every run of the target as the export document lists it, by op id; a quarantined run is listed
    (the export is lossless) with ``quarantined: true`` so no reader counts it."""
    out: Dict[int, List[Dict[str, Any]]] = {}
    q = (select(measurements).where(measurements.c.target_id == target_id)
         .order_by(measurements.c.op_id, measurements.c.run_id))
    for m in conn.execute(q).mappings():
        out.setdefault(m["op_id"], []).append({
            "run_id": m["run_id"], "device": m["device"], "fingerprint_digest": m["fingerprint_digest"],
            "stats": json.loads(m["stats"]), "measured_at": m["measured_at"], "env": json.loads(m["env"]),
            **({"quarantined": True} if m["quarantined_at"] is not None else {})})
    return out


def devices_of(conn: Connection, target_id: int) -> set:
    return {r[0] for r in conn.execute(select(measurements.c.device).distinct()
                                       .where(measurements.c.target_id == target_id))}
