"""THE aggregation rule of a LUT entry (docs/server.md, "How an entry is computed"), shared by the
server that stores entries and every reader that recomputes one from an export document.

Every run (one ``run_id``, one board) gives a median. Quarantined runs are left out before this.
Per board, the value is the median of that board's run medians; the entry's value is the median
over boards, so one board posting many runs, or a few fabricated run ids, moves the value no more
than one board can. ``mean_ms``, ``p10_ms`` and ``p90_ms`` follow the same two levels (the mean
averages each board's runs with a mean, then takes the median over boards). ``spread_pct`` is
(max - min) of the run medians relative to the value.
"""

from __future__ import annotations

import statistics
from typing import Callable, Dict, Iterable, List, NamedTuple, Sequence, Union

METRICS = ("median_ms", "mean_ms", "p10_ms", "p90_ms")
# The entry field that holds each metric (the median is the entry's value).
ENTRY_FIELD = {"median_ms": "value_ms", "mean_ms": "mean_ms", "p10_ms": "p10_ms", "p90_ms": "p90_ms"}


class Run(NamedTuple):
    """What one counted run contributes to an entry."""

    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    device: str


def _two_level(runs: Sequence[Run], field: str, avg: Callable[[List[float]], float] = statistics.median) -> float:
    by_device: Dict[str, List[float]] = {}
    for r in runs:
        by_device.setdefault(r.device, []).append(float(getattr(r, field)))
    return float(statistics.median(avg(v) for v in by_device.values()))


def aggregate(runs: Iterable[Union[Run, Sequence]]) -> Dict[str, Union[float, int]]:
    """Entry fields (``value_ms``, ``mean_ms``, ``p10_ms``, ``p90_ms``, ``n_runs``, ``n_devices``,
    ``spread_pct``) from the counted runs of one op; at least one run."""
    rs = [Run(*r) for r in runs]
    if not rs:
        raise ValueError("an entry needs at least one counted run")
    medians = [r.median_ms for r in rs]
    value = _two_level(rs, "median_ms")
    return {
        "value_ms": value,
        "mean_ms": _two_level(rs, "mean_ms", statistics.fmean),
        "p10_ms": _two_level(rs, "p10_ms"),
        "p90_ms": _two_level(rs, "p90_ms"),
        "n_runs": len(rs),
        "n_devices": len({r.device for r in rs}),
        "spread_pct": (max(medians) - min(medians)) / value * 100.0 if len(rs) > 1 else 0.0,
    }


def check_metric(metric: str) -> str:
    """``metric`` if known; ``value_ms`` is accepted as the entry field's name for the median."""
    if metric == "value_ms":
        return "median_ms"
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} must be one of {', '.join(METRICS)}")
    return metric
