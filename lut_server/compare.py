"""Op by op, an old LUT (an imported table, a former software version) against fresh measurements of
another target: the one computation behind `lut status --compare` (GET /compare) and the comparison
section of `lut report --compare`.

Ratios are new / old of the LUT values (median of run medians) of the op keys both targets have;
``|difference|`` is ``|new / old - 1|``, relative to the old number, as a fraction. The worst ops are
those whose two values are furthest apart by factor (``max(r, 1 / r)``), so 2x slower and 2x faster
rank alike; equal factors (to 9 digits) by key.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Mapping, Optional, Union

from sqlalchemy import Connection

from lut_server import spaces
from lut_server.store.entries import values_by_key
from lut_server.store.registry import parse_target, target_row
from lut_server.util import BadInput
from lutcore.spaces.cells.space import CellSpace
from lutcore.spaces.space import Space

BAND = 0.10  # "within +-10%", inclusive
WORST = 10
MAX_WORST = 200
EXAMPLES = 5


class UnknownTarget(BadInput):
    """A target the LUT has no row for (404 over REST)."""


def figures(old: Mapping[str, float], new: Mapping[str, float], worst: int = WORST) -> Dict[str, Any]:
    """The comparison of two key -> ms maps. Keys with a value <= 0 on either side have no ratio and are
    counted in ``not_positive``."""
    both = sorted(set(old) & set(new))
    pairs = [(k, old[k], new[k]) for k in both if old[k] > 0 and new[k] > 0]
    ratios = [n / o for _, o, n in pairs]
    diffs = [abs(r - 1) for r in ratios]
    apart = sorted(pairs, key=lambda p: (-round(max(p[2] / p[1], p[1] / p[2]), 9), p[0]))[:worst]  # ties by key
    only_old = sorted(set(old) - set(new))
    only_new = sorted(set(new) - set(old))
    return {
        "common": len(pairs),
        "not_positive": len(both) - len(pairs),
        "median_ratio": statistics.median(ratios) if ratios else None,
        "median_abs_diff": statistics.median(diffs) if diffs else None,
        "within_10pct": sum(d <= BAND + 1e-12 for d in diffs) / len(diffs) if diffs else None,
        "worst": [{"key": k, "old_ms": o, "new_ms": n, "ratio": n / o} for k, o, n in apart],
        "only_old": len(only_old), "only_old_examples": only_old[:EXAMPLES],
        "only_new": len(only_new), "only_new_examples": only_new[:EXAMPLES],
    }


def compare(conn: Connection, old: str, new: str, space: Union[None, str, Space, CellSpace] = None,
            resolution: Optional[str] = None, worst: int = WORST) -> Dict[str, Any]:
    """``figures`` of two stored targets, over every key they hold, or over the ops of ``space`` (at
    ``resolution``, default its own) only; then ``space_ops`` counts the space's ops."""
    if not 1 <= worst <= MAX_WORST:
        raise BadInput(f"worst must be between 1 and {MAX_WORST}")
    if resolution is not None and space is None:
        raise BadInput("resolution goes with space")
    rows = []
    for tid in (old, new):
        parse_target(tid)
        got = target_row(conn, tid)
        if got is None:
            raise UnknownTarget(f"unknown target {tid!r}")
        rows.append(got[0])
    keys: Optional[List[str]] = None
    head: Dict[str, Any] = {"old": old, "new": new, "space": None, "resolution": None}
    if space is not None:
        sp = spaces.resolve(conn, space, resolution)
        keys = sorted(sp.unique_ops())
        head.update(space=sp.name, resolution=sp.resolution_str, space_ops=len(keys))
    vals = [values_by_key(conn, r, keys) for r in rows]
    return {**head, **figures(vals[0], vals[1], worst)}
