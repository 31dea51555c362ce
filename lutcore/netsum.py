"""A network's latency from a partly predicted LUT: its sum, how much of it is predicted, an interval.

Measured cells add their value and no width. Predicted cells add their value and their interval,
combined by one of two rules: ``linear`` adds the bounds (as if every op erred the same way: wide,
never too narrow when the model is biased) and ``rss`` adds the half-widths in quadrature (as if
ops erred independently: narrow, too narrow when they do not). The bench reports the coverage of
both on measured networks, so serving can pick the one that holds. Shared by the server's predictor
(bench, ``lut predictor eval``) and search_client's ``predict_latency(missing="predict")``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

RULES = ("linear", "rss")


def sum_or_none(values: Iterable[Optional[float]]) -> Optional[float]:
    """The sum of measured costs, or None when any of them is unmeasured: never a silent partial sum."""
    vs = list(values)
    return None if any(v is None for v in vs) else float(sum(vs))  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class NetworkSum:
    total_ms: float
    lo_ms: float
    hi_ms: float
    predicted_ms: float  # the part of total_ms that is predicted
    ops: int
    predicted_ops: int

    @property
    def predicted_share(self) -> float:
        return self.predicted_ms / self.total_ms if self.total_ms > 0 else 0.0

    def to_dict(self) -> Dict[str, float]:
        return {**dataclasses.asdict(self), "predicted_share": self.predicted_share}


def network_sum(keys: Sequence[str], measured: Mapping[str, float],
                predicted: Mapping[str, Tuple[float, float, float]], rule: str = "linear") -> NetworkSum:
    """``keys``: the network's deployed ops (repeats count each time); a key in ``measured`` is taken
    from there, else from ``predicted`` as (value, lo, hi). A key in neither raises KeyError."""
    if rule not in RULES:
        raise ValueError(f"rule {rule!r}: must be one of {', '.join(RULES)}")
    known = pred = below = above = 0.0
    below_sq = above_sq = 0.0
    n_pred = 0
    for k in keys:
        if k in measured:
            known += measured[k]
            continue
        v, lo, hi = predicted[k]
        pred += v
        below, above = below + (v - lo), above + (hi - v)
        below_sq, above_sq = below_sq + (v - lo) ** 2, above_sq + (hi - v) ** 2
        n_pred += 1
    if rule == "rss":
        below, above = math.sqrt(below_sq), math.sqrt(above_sq)
    total = known + pred
    return NetworkSum(total, total - below, total + above, pred, len(keys), n_pred)
