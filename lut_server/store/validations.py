"""Validation results, one row per (target, space, resolution, run, architecture)."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from sqlalchemy import Connection, select

from lut_server.schema import targets, validations
from lut_server.util import insert_returning

KEY = ["target_id", "space", "resolution", "run_id", "arch"]


def insert(conn: Connection, rows: List[Dict[str, Any]]) -> int:
    """How many rows this call stored (re-posted (run_id, arch) pairs are skipped)."""
    return len(insert_returning(conn, validations, rows, KEY, validations.c.id))


def rows_for(conn: Connection, target_id: int, space: str, resolution: str) -> List[Any]:
    """The triple's rows, oldest first."""
    q = (select(validations).where(validations.c.target_id == target_id, validations.c.space == space,
                                   validations.c.resolution == resolution)
         .order_by(validations.c.created_at, validations.c.id))
    return list(conn.execute(q).mappings())


def for_target(conn: Connection, target_id: int) -> List[Any]:
    q = (select(validations).where(validations.c.target_id == target_id)
         .order_by(validations.c.space, validations.c.resolution, validations.c.created_at, validations.c.id))
    return list(conn.execute(q).mappings())


def triples(conn: Connection) -> List[Tuple[str, str, str]]:
    """(space, resolution, target id) with validations."""
    q = (select(validations.c.space, validations.c.resolution, targets.c.tid).distinct()
         .join(targets, targets.c.id == validations.c.target_id)
         .order_by(validations.c.space, validations.c.resolution, targets.c.tid))
    return [(r[0], r[1], r[2]) for r in conn.execute(q).all()]


def devices_of(conn: Connection, target_id: int) -> set:
    return {r[0] for r in conn.execute(select(validations.c.device).distinct()
                                       .where(validations.c.target_id == target_id))}
