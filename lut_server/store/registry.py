"""Targets and ops: get-or-create by their canonical id/key, so every table refers to them by row id."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import Connection, select, update

from lut_server.schema import ops, targets
from lut_server.util import BadInput, clean_text, dump_json, insert_ignore, now
from lutcore.ops import OpSpec
from lutcore.records import Target

MAX_COUNT = 2**62


def parse_target(tid: str) -> Target:
    """A Target from its id, or BadInput naming what is wrong with the id."""
    clean_text(tid, "target", 512)
    try:
        return Target.parse(tid)
    except ValueError as e:
        raise BadInput(f"target {tid!r}: {e}") from None


def target_row(conn: Connection, tid: str) -> Optional[Tuple[int, int]]:
    """(row id, lut_version) of a known target, else None."""
    r = conn.execute(select(targets.c.id, targets.c.lut_version).where(targets.c.tid == tid)).first()
    return (int(r[0]), int(r[1])) if r else None


def ensure_target(conn: Connection, target: Target) -> int:
    tid = clean_text(target.id, "target", 512)
    got = target_row(conn, tid)
    if got:
        return got[0]
    insert_ignore(conn, targets, [{"tid": tid, "spec": dump_json(target.model_dump()), "lut_version": 0,
                                   "created_at": now()}], ["tid"])
    got = target_row(conn, tid)
    assert got is not None
    return got[0]


def op_row(spec: OpSpec) -> Dict[str, object]:
    macs, params = spec.macs(), spec.params()
    if not (0 <= macs < MAX_COUNT and 0 <= params < MAX_COUNT):
        raise BadInput(f"op {spec.key}: MACs/params out of range (shape too large)")
    return {"key": clean_text(spec.key, "key"), "digest": spec.digest, "family": spec.family,
            "spec": dump_json(spec.to_dict()), "macs": macs, "params": params}


def ensure_ops(conn: Connection, specs: Iterable[OpSpec]) -> Dict[str, int]:
    """Row ids by key, inserting the ops not yet known (sorted, so concurrent writers lock in one order)."""
    by_key = {s.key: s for s in specs}
    ids = op_ids(conn, list(by_key))
    new = [op_row(by_key[k]) for k in sorted(by_key) if k not in ids]
    if new:
        insert_ignore(conn, ops, new, ["key"])
        ids.update(op_ids(conn, [r["key"] for r in new]))  # type: ignore[misc]
    return ids


def op_ids(conn: Connection, keys: List[str]) -> Dict[str, int]:
    return {k: int(v) for k, v in _ops_column(conn, keys, ops.c.id).items()}


def _ops_column(conn: Connection, keys: List[str], column: Any) -> Dict[str, Any]:
    """``column`` of the known ops among ``keys``, by key (900 keys per query: SQLite's bind limit)."""
    out: Dict[str, Any] = {}
    for i in range(0, len(keys), 900):
        out.update(dict(conn.execute(select(ops.c.key, column).where(ops.c.key.in_(keys[i : i + 900]))).all()))
    return out


def op_specs(conn: Connection, keys: List[str]) -> Dict[str, str]:
    """Spec JSON of the known ops among ``keys`` (an unknown key has no spec to predict from)."""
    return {k: str(v) for k, v in _ops_column(conn, keys, ops.c.spec).items()}


def lut_version(conn: Connection, target_id: int) -> int:
    return int(conn.execute(select(targets.c.lut_version).where(targets.c.id == target_id)).scalar_one())


def bump_version(conn: Connection, target_id: int) -> int:
    """Every change of a target's entries bumps its ``lut_version`` (cost-matrix caches key on it)."""
    return int(conn.execute(update(targets).where(targets.c.id == target_id)
                            .values(lut_version=targets.c.lut_version + 1).returning(targets.c.lut_version))
               .scalar_one())


def set_version(conn: Connection, target_id: int, version: int) -> None:
    conn.execute(update(targets).where(targets.c.id == target_id).values(lut_version=version))


def all_targets(conn: Connection, tid: Optional[str] = None) -> List[Dict[str, Any]]:
    """Target rows (id, tid, spec, lut_version), by id; one when ``tid`` is given."""
    q = select(targets).order_by(targets.c.tid)
    if tid is not None:
        q = q.where(targets.c.tid == tid)
    return [dict(r) for r in conn.execute(q).mappings()]
