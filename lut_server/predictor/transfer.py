"""A new target from a few measurements (issue 20): a predictor fitted on one target, adapted to
another with the ops measured there (10-50 of them).

The old target's prediction is the new one's prior, the way the prior is for a fresh fit: what a
board changes is mostly how time scales with the work (another clock, another thread count), less
which op is fast. Adaptations (``HOW``):

- ``scale``: one factor per target, the geometric mean of measured / old prediction;
- ``power``: ``log y = a + b log old`` (b in [0.5, 2], as ``model._power_law``): big and small ops
  may move apart (e.g. a second thread helps large convolutions, not launch-bound ones);
- ``affine``: ``y = c + f * old`` (c, f >= 0, relative errors): a second thread halves the work but
  not the launch overhead, so small ops keep a constant the factor cannot scale away;
- ``affine+residual``: and a ridge residual on the op features over what ``affine`` leaves, once there
  are enough ops for it (``MIN_RESIDUAL``); below that it is ``affine``.

Intervals: split-conformal over leave-one-out errors of the adapted model on the new ops (the same
rule as ``conformal.bounds``), so a transferred prediction carries one like a fitted one.
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np

from lut_server.predictor import conformal, features
from lut_server.predictor.errors import PredictorError
from lut_server.predictor.model import Predictor, _dedupe, _power_law
from lut_server.predictor.residual import ResidualModel
from lutcore.ops import OpSpec

HOW = ("scale", "power", "affine", "affine+residual")
MIN_OPS = 3
MIN_RESIDUAL = 20


class _Map:
    """old log prediction (+ features) -> new log latency, fitted on one set of ops."""

    def __init__(self, how: str, lp: np.ndarray, x: np.ndarray, ly: np.ndarray) -> None:
        self.how = how
        if how == "scale":
            self.coef = (1.0, float(np.mean(ly - lp)))
        elif how == "power":
            self.coef = _power_law(lp, ly)
        else:
            self.coef = _affine(np.exp(lp), np.exp(ly))
        self.residual = None
        if how.endswith("+residual") and len(ly) >= MIN_RESIDUAL:
            self.residual = ResidualModel("ridge").fit(x, ly - self._base(lp))

    def _base(self, lp: np.ndarray) -> np.ndarray:
        a, b = self.coef
        if self.how.startswith("affine"):
            return np.log(a + b * np.exp(lp))
        return b + a * lp  # (slope, offset) in log-log

    def __call__(self, lp: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = self._base(lp)
        return out if self.residual is None else out + self.residual.predict(x)


def _affine(old: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """(constant ms, factor), both >= 0 and not both 0, minimising relative errors of c + f * old."""
    from scipy.optimize import nnls

    a = np.column_stack([np.ones_like(old), old]) / y[:, None]
    (c, f), _ = nnls(a, np.ones_like(y))
    if c + f <= 0:
        return 0.0, float(np.exp(np.mean(np.log(y / old))))
    return float(c), float(f)


class Transferred:
    """``Transferred(source, "affine").fit([(spec, ms) on the new target]).predict_arrays(specs)``."""

    def __init__(self, source: Predictor, how: str = "affine", coverage: float = 0.9) -> None:
        if how not in HOW:
            raise PredictorError(f"adaptation {how!r}: must be one of {', '.join(HOW)}")
        self.source, self.how, self.coverage = source, how, coverage
        self._map: _Map | None = None
        self._bounds: Tuple[float, float] = (-math.inf, math.inf)
        self.n_train = 0

    def _inputs(self, specs: Sequence[OpSpec]) -> Tuple[np.ndarray, np.ndarray]:
        return np.log(self.source.predict_arrays(specs)[0]), features.matrix(specs)

    def fit(self, entries: Sequence[Tuple[OpSpec, float]]) -> Transferred:
        specs, y = _dedupe(entries)
        if len(specs) < MIN_OPS:
            raise PredictorError(f"{len(specs)} measured op(s) on the new target: adapting needs at least {MIN_OPS}")
        lp, x = self._inputs(specs)
        ly = np.log(y)
        self._map = _Map(self.how, lp, x, ly)
        loo = np.empty(len(ly))
        for i in range(len(ly)):
            keep = np.arange(len(ly)) != i
            loo[i] = _Map(self.how, lp[keep], x[keep], ly[keep])(lp[i:i + 1], x[i:i + 1])[0]
        self._bounds = conformal.bounds(ly - loo, self.coverage)
        self.n_train = len(specs)
        return self

    def predict_arrays(self, specs: Sequence[OpSpec]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, low, high) in ms on the new target; an identity costs exactly 0."""
        if self._map is None:
            raise PredictorError("predict before fit")
        if not specs:
            empty = np.zeros(0)
            return empty, empty, empty
        value = np.exp(self._map(*self._inputs(specs)))
        lo, hi = value * math.exp(self._bounds[0]), value * math.exp(self._bounds[1])
        zero = np.array([s.is_identity for s in specs])
        value[zero] = lo[zero] = hi[zero] = 0.0
        return value, lo, hi


def curve(source: Predictor, new: List[Tuple[OpSpec, float]], counts: Sequence[int], how: str,
          seeds: int) -> List[dict]:
    """Per count n: adapt with n random ops of ``new`` (per seed), score the rest of ``new``; the means
    over the seeds of median |error|, within +-10% and the 90% intervals' coverage."""
    rows = []
    for n in counts:
        if n >= len(new):
            continue
        got = []
        for seed in range(seeds):
            pick = set(np.random.default_rng(seed).permutation(len(new))[:n].tolist())
            train = [new[i] for i in sorted(pick)]
            test = [new[i] for i in range(len(new)) if i not in pick]
            model = Transferred(source, how) if how != "scratch" else Predictor(seed=seed)
            v, lo, hi = model.fit(train).predict_arrays([s for s, _ in test])
            truth = np.array([ms for _, ms in test])
            err = np.abs(v / truth - 1.0)
            got.append((float(np.median(err)), float(np.mean(err <= 0.10)),
                        float(np.mean((truth >= lo) & (truth <= hi)))))
        med, w10, cov = (float(np.mean(c)) for c in zip(*got))
        rows.append({"how": how, "n_measured": n, "n_test": len(new) - n, "seeds": seeds,
                     "median_abs_error": med, "within_10pct": w10, "interval_coverage": cov})
    return rows
