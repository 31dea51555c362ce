"""Search spaces on the server: resolve a name or definition, enqueue what the LUT lacks, cost matrix.

A custom space name is bound to the digest of its definition (``space_definitions``): registering
the same definition again is idempotent, a different one under a taken name is a SpaceConflict (409).
Definitions are bounded (``space_bounds``) before lutcore expands them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from sqlalchemy import Connection

from lut_server import staleness
from lut_server.space_bounds import check_definition, check_resolution
from lut_server.store import calibrations, entries, jobs
from lut_server.store import spaces as stored_spaces
from lut_server.store.entries import METRIC_COLUMN, entries_by_key, measured_op_ids
from lut_server.store.registry import ensure_ops, ensure_target, parse_target, target_row
from lut_server.util import BadInput, clean_text, dump_json, now
from lutcore.errors import LutError, UnknownNameError
from lutcore.netsum import sum_or_none
from lutcore.ops import OpSpec
from lutcore.spaces import Space, get_space, space_from_dict, space_names
from lutcore.spaces.cells import CellLayout
from lutcore.spaces.cells.space import CellSpace

CellFill = Callable[[CellLayout, Dict[str, float]], Dict[str, Any]]
AnySpace = Union[Space, CellSpace]  # a chain of layers, or cells of edges (darts-*, autortnet)
SpaceArg = Union[str, Dict[str, Any], Space, CellSpace]  # a name, a definition, or a space already resolved


class SpaceConflict(ValueError):
    """A custom space name is taken by a different definition (409)."""


_DIGESTS: Dict[int, Tuple[Any, str]] = {}  # id(space) -> (space, digest); the space is kept so its id stays its own


def digest(sp: AnySpace) -> str:
    """What a custom name is bound to: SHA-256 of the canonical definition (memoized per Space object:
    the cost matrix asks for it on every request, and resolved spaces are cached objects)."""
    got = _DIGESTS.get(id(sp))
    if got is not None and got[0] is sp:
        return got[1]
    text = hashlib.sha256(dump_json(sp.definition.to_dict()).encode("utf-8")).hexdigest()
    if len(_DIGESTS) > 512:
        _DIGESTS.clear()
    _DIGESTS[id(sp)] = (sp, text)
    return text


@functools.lru_cache(maxsize=1)
def builtin_names() -> frozenset:
    """Built-in space names; called once at app start (lutcore's lazy registry load is not thread-safe)."""
    return frozenset(space_names())


@functools.lru_cache(maxsize=64)
def _builtin(name: str, resolution: Optional[str]) -> AnySpace:
    return get_space(name, resolution)


@functools.lru_cache(maxsize=64)
def _from_definition(text: str, resolution: Optional[str]) -> AnySpace:
    return space_from_dict(json.loads(text)).at(resolution)


def resolve(conn: Connection, space: SpaceArg, resolution: Optional[str]) -> AnySpace:
    """A space from a built-in name, a custom name registered earlier, or a full definition."""
    if isinstance(space, (Space, CellSpace)):
        return space
    if resolution is not None:
        clean_text(resolution, "resolution", 32)
        check_resolution(resolution)
    try:
        if isinstance(space, dict):
            check_definition(space)
            return _from_definition(dump_json(space, "space"), resolution)
        clean_text(space, "space", 256)
        if space in builtin_names():  # never a path: get_space would read files on the server
            return _builtin(space, resolution)
        text = stored_spaces.definition_of(conn, space)
        if text is None:
            raise UnknownNameError("space", space, sorted(builtin_names()))
        return _from_definition(text, resolution)
    except BadInput:
        raise
    except (LutError, ValueError) as e:  # bad input only: anything else is a server bug and stays a 500
        raise BadInput(f"space: {e}") from None


def chain(sp: AnySpace) -> Space:
    """``sp`` as a chain space (layers x candidates), or the 4xx a cell space gets where a matrix is asked for."""
    if isinstance(sp, CellSpace):
        raise BadInput(f"space {sp.name} is a cell space: its costs are edge x op tensors per cell, not a "
                       "layers x candidates matrix; use POST /cell-costs (search_client: LUTClient.cell_costs)")
    return sp


def cells(sp: AnySpace) -> CellSpace:
    """``sp`` as a cell space, or the 4xx a chain space gets where cell costs are asked for."""
    if not isinstance(sp, CellSpace):
        raise BadInput(f"space {sp.name} is a chain space: use POST /cost-matrix for its layers x candidates matrix")
    return sp


def grid_keys(sp: Space) -> List[str]:
    """Every key the cost matrix needs: valid grid cells (identities included) and fixed ops."""
    keys: Dict[str, None] = {}
    for row in sp.grid:
        for c in row:
            if isinstance(c, OpSpec):
                keys.setdefault(c.key, None)
    for f in sp.fixed:
        keys.setdefault(f.spec.key, None)
    return list(keys)


def identity_keys(sp: Space) -> set:
    return {c.key for row in sp.grid for c in row if isinstance(c, OpSpec) and c.is_identity}


def bind_name(conn: Connection, sp: AnySpace) -> None:
    """Bind a custom definition's name to its digest, or SpaceConflict if the name is taken by another."""
    name = clean_text(sp.name, "space name", 256)
    mine = digest(sp)
    if name in builtin_names():
        if digest(_builtin(name, None)) != mine:
            raise SpaceConflict(f"space name {name!r} is a built-in space with a different definition; "
                                f"choose a new name (e.g. {name}-custom) or an explicit version ({name}-v2)")
        return
    have = stored_spaces.bind(conn, name, mine, dump_json(sp.definition.to_dict()))
    if have != mine:
        raise SpaceConflict(f"space name {name!r} is already registered with a different definition "
                            f"(digest {have[:12]}, yours {mine[:12]}); register yours under a new name or an "
                            f"explicit version, e.g. {name}-v2")


def register(conn: Connection, space: Union[str, Dict[str, Any]], resolution: Optional[str], tid: str,
             priority: int, max_attempts: int, resolved: Optional[AnySpace] = None,
             enqueue: bool = True) -> Dict[str, Any]:
    """Record the space for the target and enqueue a job for every unique op it lacks (idempotent).
    ``resolved``: the Space already built from ``space`` outside the write transaction. ``enqueue=False``:
    record only (a measurement plan, ``lut_server.plans``, enqueues instead)."""
    target = parse_target(tid)
    sp = resolved or resolve(conn, space, resolution)
    if sp.definition.batch != target.batch:
        raise BadInput(f"space {sp.name} is timed at batch {sp.definition.batch}, target {tid} at {target.batch}")
    custom = not (isinstance(space, str) and sp.name == space)
    if custom:
        bind_name(conn, sp)
    target_id = ensure_target(conn, target)
    unique = sp.unique_ops()
    ids = ensure_ops(conn, unique.values())
    stored_spaces.save_registration(conn, target_id, clean_text(sp.name, "space name", 256), sp.resolution_str,
                                    dump_json(sp.definition.to_dict()) if custom else None, priority)
    measured = measured_op_ids(conn, target_id, list(unique))
    want = [v for k, v in ids.items() if k not in measured]
    enqueued = jobs.enqueue_ops(conn, target_id, want, priority, max_attempts,
                                {"space": sp.name, "resolution": sp.resolution_str}, now()) if enqueue else 0
    return {"space": sp.name, "resolution": sp.resolution_str, "target": tid, "unique_ops": len(unique),
            "enqueued": enqueued, "already_measured": len(measured)}


def delete(conn: Connection, name: str) -> Dict[str, int]:
    """Admin: forget a space name (its definition and its registrations on every target). Jobs already
    queued stay (cancel them with POST /jobs/{id}/cancel); measurements and entries are kept."""
    clean_text(name, "space", 256)
    return stored_spaces.delete(conn, name)


def cost_matrix(conn: Connection, space: SpaceArg, resolution: Optional[str], tid: str,
                metric: str = "median_ms") -> Dict[str, Any]:
    """[layers x candidates] costs, mask, keys, fixed cost and coverage in one answer."""
    parse_target(tid)
    if metric not in METRIC_COLUMN:
        raise BadInput(f"metric {metric!r} must be one of {', '.join(METRIC_COLUMN)}")
    sp = chain(resolve(conn, space, resolution))
    keys = grid_keys(sp)
    idents = identity_keys(sp)
    got = target_row(conn, tid)
    values: Dict[str, float] = {}
    version = 0
    if got is not None:
        version = got[1]
        need = [k for k in keys if k not in idents]
        values = {k: v["value_ms"] for k, v in entries_by_key(conn, got[0], need, metric).items()}
    for k in idents:
        values[k] = 0.0
    matrix: List[List[Optional[float]]] = []
    key_rows: List[List[Optional[str]]] = []
    for row in sp.grid:
        matrix.append([values.get(c.key) if isinstance(c, OpSpec) else None for c in row])
        key_rows.append([c.key if isinstance(c, OpSpec) else None for c in row])
    fixed: List[Dict[str, Any]] = [{"name": f.name, "key": f.spec.key, "value_ms": values.get(f.spec.key)}
                                   for f in sp.fixed]
    missing = [k for k in keys if k not in values]
    measured = len(keys) - len(missing)
    return {
        "space": sp.name, "resolution": sp.resolution_str, "target": tid, "lut_version": version,
        "candidates": list(sp.candidates), "layers": sp.num_layers, "matrix": matrix, "mask": sp.mask(),
        "keys": key_rows, "fixed": fixed,
        "fixed_ms": sum_or_none(f["value_ms"] for f in fixed),
        "coverage": {"measured": measured, "total": len(keys),
                     "fraction": measured / len(keys) if keys else 1.0},
        "missing": missing,
        "calibration": _calibration(conn, tid, sp, got[0] if got else None, keys),
    }


def cell_costs(conn: Connection, space: SpaceArg, resolution: Optional[str], tid: str,
               metric: str = "median_ms", fill: Optional[CellFill] = None) -> Dict[str, Any]:
    """A cell space's costs: its key layout and, filled from the LUT, C [cells][edges][ops], the cells'
    preprocessing, each hyper-cell's depth options and the fixed ops (lutcore ``CellLayout.fill``).

    ``fill(layout, measured values)`` may replace and add fields (``predicted.fill_cells``): it needs the
    per-key values, which C's sums (preprocessing, depth) no longer show."""
    parse_target(tid)
    if metric not in METRIC_COLUMN:
        raise BadInput(f"metric {metric!r} must be one of {', '.join(METRIC_COLUMN)}")
    sp = cells(resolve(conn, space, resolution))
    layout = sp.layout()
    idents = set(layout.identities)
    keys = [k for k in layout.all_keys() if k not in idents]
    got = target_row(conn, tid)
    values = {} if got is None else {k: v["value_ms"] for k, v in entries_by_key(conn, got[0], keys, metric).items()}
    filled = layout.fill(values)
    return {
        "space": sp.name, "resolution": sp.resolution_str, "target": tid, "metric": metric,
        "lut_version": got[1] if got else 0, "layout": layout.to_dict(),
        "C": filled.C, "pre": filled.pre, "depth": filled.depth,
        "fixed": [{"name": n, "key": k, "value_ms": v} for (n, k), v in zip(layout.fixed, filled.fixed)],
        "fixed_ms": filled.fixed_ms, "coverage": filled.coverage, "missing": filled.missing, "add": filled.add,
        "calibration": _calibration(conn, tid, sp, got[0] if got else None, keys),
        **(fill(layout, values) if fill is not None else {}),
    }


def _calibration(conn: Connection, tid: str, sp: AnySpace, target_id: Optional[int],
                 keys: List[str]) -> Optional[Dict[str, Any]]:
    """The stored calibration (lutcore Calibration.to_dict()) that search_client applies, or None.

    ``stale`` is true once the LUT moved the sum of an architecture the calibration was fitted on by
    more than ``staleness.STALE_TOL`` (``drift``: the largest move). A calibration stored before its
    basis was kept falls back to: one of the space's entries changed after the fit.
    """
    rec = calibrations.stored(conn, tid, sp.name, sp.resolution_str)
    if rec is None:
        return None
    out = {**rec["calibration"], "fitted_at": rec["created_at"], "fitted_lut_version": rec["lut_version"]}
    drift = None if target_id is None else staleness.record_drift(conn, target_id, rec)
    if drift is not None:
        return {**out, "drift": round(drift, 6), "stale": drift > staleness.STALE_TOL}
    newest = None if target_id is None else entries.newest_update(conn, target_id, keys)
    fitted = calibrations.stamp(conn, tid, sp.name, sp.resolution_str)
    return {**out, "drift": None, "stale": newest is not None and fitted is not None and newest > fitted}


def registered(conn: Connection) -> List[Dict[str, Any]]:
    """Registered (space, resolution, target) triples, for status."""
    return stored_spaces.registered(conn)


def coverage(conn: Connection, row: Dict[str, Any]) -> Dict[str, Any]:
    space: Union[str, Dict[str, Any]] = json.loads(row["definition"]) if row["definition"] else row["name"]
    sp = resolve(conn, space, row["resolution"])
    if isinstance(sp, CellSpace):  # no matrix: count the unique ops the LUT has
        keys = [k for k, s in sp.unique_ops().items() if not s.is_identity]
        got = target_row(conn, row["tid"])
        have = len(measured_op_ids(conn, got[0], keys)) if got else 0
        return {"space": row["name"], "resolution": row["resolution"], "target": row["tid"], "measured": have,
                "total": len(keys), "fraction": have / len(keys) if keys else 1.0}
    cm = cost_matrix(conn, sp, row["resolution"], row["tid"])
    return {"space": row["name"], "resolution": row["resolution"], "target": row["tid"], **cm["coverage"]}


__all__ = ["cell_costs", "cost_matrix", "coverage", "ensure_target", "register", "registered", "resolve"]
