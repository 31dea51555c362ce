"""When a calibration no longer fits the LUT it corrects, and the refit that follows (issue 12).

A calibration maps LUT sums to measured latencies. It rests on the sums of the architectures it
was fitted on, stored with it as its ``basis``. It is stale once the LUT moved one of those sums
by more than ``STALE_TOL``: re-measuring an op that leaves the sums where they were (an identical
second run, a shared op timed again by another space) does not make it stale. An ingest that
makes a calibration stale queues a validate job that re-times its architectures and refits it,
so a calibration follows its LUT without anyone re-running ``validate --calibrate`` by hand.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from sqlalchemy import Connection

from lut_server.store import calibrations, entries
from lutcore.errors import LutError
from lutcore.spaces import get_arch

STALE_TOL = 0.01  # a sum moved by more than 1% of itself: a third of the 3% the LUT is held to


@functools.lru_cache(maxsize=4096)
def _keys_of(name: str, resolution: str) -> Optional[Tuple[str, ...]]:
    """An architecture's op keys, built once: each ingest into a calibrated target asks for them
    before and after its entries change, inside the write transaction."""
    try:
        return tuple(s.key for _, s in get_arch(name, resolution).all_ops())
    except (LutError, ValueError):
        return None


def arch_keys(names: Iterable[str], resolution: str) -> Dict[str, Tuple[str, ...]]:
    """Op keys of each architecture that can be built by name (custom spaces' cannot: left out)."""
    out: Dict[str, Tuple[str, ...]] = {}
    for n in names:
        keys = _keys_of(n, resolution)
        if keys is not None:
            out[n] = keys
    return out


def lut_sums(conn: Connection, target_id: int, names: Iterable[str], resolution: str) -> Dict[str, float]:
    """The LUT's sum for each architecture whose ops are all measured."""
    keys = arch_keys(names, resolution)
    need = sorted({k for ks in keys.values() for k in ks})
    values = {k: v["value_ms"] for k, v in entries.entries_by_key(conn, target_id, need, "median_ms").items()}
    return {n: float(sum(values[k] for k in ks)) for n, ks in keys.items() if all(k in values for k in ks)}


def drift(basis: Dict[str, float], current: Dict[str, float]) -> Optional[float]:
    """Largest relative move of a basis sum; None when no basis architecture can be summed now."""
    common = [n for n in basis if n in current and basis[n] > 0]
    if not common:
        return None
    return max(abs(current[n] / basis[n] - 1.0) for n in common)


def record_drift(conn: Connection, target_id: int, record: Dict[str, Any]) -> Optional[float]:
    """The drift of a stored calibration record; None for records fitted before the basis was kept."""
    basis = record.get("basis")
    if not basis:
        return None
    return drift(basis, lut_sums(conn, target_id, basis, record["resolution"]))


def affected(conn: Connection, target_id: int, tid: str, changed_keys: Set[str]) -> List[Dict[str, Any]]:
    """The target's calibration records whose basis architectures use one of ``changed_keys``,
    each with ``drift_before`` (their drift before the change is applied)."""
    out = []
    for rec in calibrations.for_target(conn, target_id, tid):
        basis = rec.get("basis") or {}
        keys = arch_keys(basis, rec["resolution"])
        if any(k in changed_keys for ks in keys.values() for k in ks):
            out.append({**rec, "drift_before": record_drift(conn, target_id, rec)})
    return out
