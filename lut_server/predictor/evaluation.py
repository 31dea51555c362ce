"""Scoring the predictor against a fully measured LUT: single ops and whole networks.

The held-out ops' measured values are the truth. For networks, the LUT a search would see is the
measured entries for the ops in the training share and predictions for the rest; its sum per
architecture is compared with the fully measured LUT's sum (the measure nn-Meter and LitePred
report). Errors are relative: ``predicted / measured - 1``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lut_server.predictor.errors import PredictorError
from lut_server.predictor.model import Predictor
from lut_server.predictor.sums import RULES, network_sum
from lutcore.ops import OpSpec


def op_scores(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
    err = np.abs(value / truth - 1.0)
    return {
        "median_abs_error": float(np.median(err)),
        "mean_abs_error": float(np.mean(err)),
        "within_5pct": float(np.mean(err <= 0.05)),
        "within_10pct": float(np.mean(err <= 0.10)),
        "interval_coverage": float(np.mean((truth >= lo) & (truth <= hi))),
        "interval_median_width": float(np.median((hi - lo) / value)),
    }


def network_errors(archs: Sequence[Any], measured: Dict[str, float],
                   predicted: Dict[str, Tuple[float, float, float]]) -> List[Dict[str, Any]]:
    """Per architecture: the fully measured sum, the partly predicted one (``predicted`` replaces the
    measured value of its keys) with its intervals by each rule of ``sums``, and their relative difference."""
    rows = []
    for a in archs:
        keys = [s.key for _, s in a.all_ops()]
        missing = [k for k in keys if k not in measured]
        if missing:
            raise PredictorError(f"{a.name}: the LUT lacks {len(missing)} of its ops, e.g. {missing[0]} "
                                 f"(is the resolution right?)")
        truth = sum(measured[k] for k in keys)
        kept = {k: v for k, v in measured.items() if k not in predicted}
        row: Dict[str, Any] = {"arch": a.name, "measured_ms": truth}
        for rule in RULES:
            got = network_sum(keys, kept, predicted, rule)
            row.update({"filled_ms": got.total_ms, "error": got.total_ms / truth - 1.0, "ops": got.ops,
                        "predicted_ops": got.predicted_ops, "predicted_share": got.predicted_share,
                        f"lo_ms_{rule}": got.lo_ms, f"hi_ms_{rule}": got.hi_ms})
        rows.append(row)
    return rows


def network_scores(rows: Sequence[Dict[str, Any]]) -> Dict[str, float]:
    err = np.abs(np.array([r["error"] for r in rows], dtype=float))
    if not len(err):
        return {}
    out = {"network_median_abs_error": float(np.median(err)), "network_max_abs_error": float(np.max(err)),
           "network_within_10pct": float(np.mean(err <= 0.10)), "networks": len(err)}
    for rule in RULES:
        inside = [r[f"lo_ms_{rule}"] <= r["measured_ms"] <= r[f"hi_ms_{rule}"] for r in rows]
        width = [(r[f"hi_ms_{rule}"] - r[f"lo_ms_{rule}"]) / r["filled_ms"] for r in rows]
        out[f"network_interval_coverage_{rule}"] = float(np.mean(inside))
        out[f"network_interval_median_width_{rule}"] = float(np.median(width))
    return out


def evaluate(entries: Sequence[Tuple[OpSpec, float]], train: Sequence[int], predictor: Predictor,
             archs: Optional[Sequence[Any]] = None) -> Dict[str, Any]:
    """Fit on ``entries[train]``, score the others; with ``archs`` also the whole-network figures."""
    chosen = set(int(i) for i in train)
    test = [i for i in range(len(entries)) if i not in chosen]
    if not chosen or not test:
        raise PredictorError("the split leaves no op to train on or none to test")
    predictor.fit([entries[i] for i in sorted(chosen)])
    specs = [entries[i][0] for i in test]
    truth = np.array([entries[i][1] for i in test])
    value, lo, hi = predictor.predict_arrays(specs)
    out: Dict[str, Any] = {"n_train": len(chosen), "n_test": len(test), **op_scores(value, lo, hi, truth)}
    if archs:
        measured = {s.key: v for s, v in entries}
        predicted = {s.key: (float(v), float(a), float(b)) for s, v, a, b in zip(specs, value, lo, hi)}
        rows = network_errors(archs, measured, predicted)
        out.update(network_scores(rows))
        out["network_rows"] = rows
    return out
