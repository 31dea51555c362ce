"""The stored calibrations, one per (target, space, resolution): all SQL of the ``calibrations`` table."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Connection, and_, select

from lut_server.schema import calibrations, targets
from lut_server.store.registry import target_row
from lut_server.util import dump_json, iso, upsert


def save(conn: Connection, target_id: int, space: str, resolution: str, record: Dict[str, Any],
         lut_version: Optional[int], created_at: float) -> None:
    fit_doc = {k: v for k, v in record.items() if k != "calibration"}
    upsert(conn, calibrations, [{"target_id": target_id, "space": space, "resolution": resolution,
                                 "calibration": dump_json(record["calibration"], "calibration"),
                                 "fit": dump_json(fit_doc, "calibration fit"), "lut_version": lut_version,
                                 "created_at": created_at}], ["target_id", "space", "resolution"])


def _record(r: Any, tid: str) -> Dict[str, Any]:
    return {"target": tid, "space": r["space"], "resolution": r["resolution"],
            "calibration": json.loads(r["calibration"]), **json.loads(r["fit"]),
            "lut_version": r["lut_version"], "created_at": iso(r["created_at"])}


def stored(conn: Connection, tid: str, space: str, resolution: str) -> Optional[Dict[str, Any]]:
    """The stored calibration record (calibration, summaries, features, fit_archs, ...) or None."""
    got = target_row(conn, tid)
    if got is None:
        return None
    r = conn.execute(select(calibrations).where(calibrations.c.target_id == got[0], calibrations.c.space == space,
                                                calibrations.c.resolution == resolution)).mappings().first()
    return None if r is None else _record(r, tid)


def for_target(conn: Connection, target_id: int, tid: str) -> List[Dict[str, Any]]:
    q = (select(calibrations).where(calibrations.c.target_id == target_id)
         .order_by(calibrations.c.space, calibrations.c.resolution))
    return [_record(r, tid) for r in conn.execute(q).mappings()]


def matrix_version(conn: Connection, tid: str, space: str, resolution: str) -> Tuple[int, Optional[float]]:
    """(the target's lut_version or -1, the triple's calibration stamp or None) in one query: what a
    rendered cost matrix is valid for."""
    on = and_(calibrations.c.target_id == targets.c.id, calibrations.c.space == space,
              calibrations.c.resolution == resolution)
    r = conn.execute(select(targets.c.lut_version, calibrations.c.created_at).select_from(
        targets.outerjoin(calibrations, on)).where(targets.c.tid == tid)).first()
    if r is None:
        return -1, None
    return int(r[0]), None if r[1] is None else float(r[1])


def stamp(conn: Connection, tid: str, space: str, resolution: str) -> Optional[float]:
    """When the triple's calibration was stored (None: none), so cached cost matrices notice a new fit."""
    q = (select(calibrations.c.created_at).join(targets, targets.c.id == calibrations.c.target_id)
         .where(targets.c.tid == tid, calibrations.c.space == space, calibrations.c.resolution == resolution))
    v = conn.execute(q).scalar()
    return None if v is None else float(v)


def label(space: str, resolution: str) -> str:
    """How the export document's per-target ``calibration`` mapping names a (space, resolution)."""
    return f"{space}@{resolution}"


def stored_by_id(conn: Connection, target_id: int, space: str, resolution: str) -> Optional[float]:
    """created_at of the stored calibration of a target row, or None (import keeps the newer one)."""
    q = select(calibrations.c.created_at).where(calibrations.c.target_id == target_id, calibrations.c.space == space,
                                                calibrations.c.resolution == resolution)
    v = conn.execute(q).scalar()
    return None if v is None else float(v)
