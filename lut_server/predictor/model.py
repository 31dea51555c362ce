"""The predictor of one target: physical prior x learned residual, with conformal intervals.

``Predictor().fit([(spec, ms), ...]).predict(specs)`` -> one ``Prediction`` (value, low, high)
per spec. It holds no database or file handles, so the server can fit one per target from its
entries and serve predicted cells as a thin layer on top.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from lut_server.predictor import conformal, features
from lut_server.predictor.errors import MIN_TRAIN, PredictorError
from lut_server.predictor.names import BLEND
from lut_server.predictor.prior import LinearPrior
from lut_server.predictor.residual import ResidualModel
from lutcore.ops import OpSpec


@dataclasses.dataclass(frozen=True)
class Prediction:
    """A predicted latency and its interval (ms); the interval covers ``coverage`` of ops like it."""

    key: str
    value_ms: float
    lo_ms: float
    hi_ms: float

    def to_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


class _Fit:
    """Prior, its power-law calibration and the residual, fitted on one set of ops.

    The calibration ``log y = a + b log prior`` lets latency grow faster or slower than the work
    (on a loaded machine long ops are preempted more often than short ones); trees cannot
    extrapolate that to the largest ops, a line in log-log can. The residual sees log(prior) too.
    """

    def __init__(self, learner: str, seed: int, prior_cols: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        self.prior = LinearPrior().fit(prior_cols, y)
        lp = np.log(self.prior.predict(prior_cols))
        self.slope, self.offset = _power_law(lp, np.log(y))
        base = self.offset + self.slope * lp
        self.residual = ResidualModel(learner, seed).fit(np.column_stack([x, lp]), np.log(y) - base)

    def log_predict(self, prior_cols: np.ndarray, x: np.ndarray) -> np.ndarray:
        lp = np.log(self.prior.predict(prior_cols))
        return self.offset + self.slope * lp + self.residual.predict(np.column_stack([x, lp]))


def _power_law(log_prior: np.ndarray, log_y: np.ndarray, lo: float = 0.5, hi: float = 2.0) -> Tuple[float, float]:
    """(slope, offset) of a least-squares line in log-log, the slope kept in [lo, hi] (monotone, sane)."""
    if len(log_y) < 3 or np.ptp(log_prior) < 1e-9:
        return 1.0, float(np.mean(log_y - log_prior)) if len(log_y) else 0.0
    slope = float(np.clip(np.polyfit(log_prior, log_y, 1)[0], lo, hi))
    return slope, float(np.mean(log_y - slope * log_prior))


class Predictor:
    """Fitted per target. ``coverage`` is the intended share of held-out ops inside their interval."""

    def __init__(self, learner: str = BLEND, coverage: float = 0.9, folds: int = 10, seed: int = 0) -> None:
        if not 0.0 < coverage < 1.0:
            raise PredictorError(f"coverage {coverage}: must lie strictly between 0 and 1")
        ResidualModel(learner)  # validates the name before any fitting
        self.learner, self.coverage, self.folds, self.seed = learner, coverage, folds, seed
        self._fit: Optional[_Fit] = None
        self._bounds: Tuple[float, float] = (-math.inf, math.inf)
        self.n_train = 0
        self._folds: List[_Fit] = []

    def fit(self, entries: Sequence[Tuple[OpSpec, float]]) -> Predictor:
        """Fit on measured (spec, ms) pairs; a key given twice counts once, at its geometric mean."""
        specs, y = _dedupe(entries)
        if len(specs) < MIN_TRAIN:
            raise PredictorError(f"{len(specs)} measured op(s): the predictor needs at least {MIN_TRAIN}")
        cols, x = features.prior_columns(specs), features.matrix(specs)
        self._fit = _Fit(self.learner, self.seed, cols, x, y)
        oof = np.empty(len(y))
        self._folds = []
        for test in conformal.folds(len(y), self.folds, self.seed):
            train = np.setdiff1d(np.arange(len(y)), test)
            f = _Fit(self.learner, self.seed, cols[train], x[train], y[train])
            oof[test] = f.log_predict(cols[test], x[test])
            self._folds.append(f)
        self._bounds = conformal.bounds(np.log(y) - oof, self.coverage)
        self.n_train = len(y)
        return self

    def disagreement(self, specs: Sequence[OpSpec]) -> np.ndarray:
        """Per spec, the standard deviation of the fold models' log predictions: how much the answer
        depends on which measured ops the model saw (high far from them). The planner ranks by it;
        the intervals do not use it (they hold for ops like the measured ones, on average)."""
        if self._fit is None:
            raise PredictorError("disagreement before fit")
        if not specs:
            return np.zeros(0)
        cols, x = features.prior_columns(specs), features.matrix(specs)
        return np.std(np.array([f.log_predict(cols, x) for f in self._folds]), axis=0)

    def predict(self, specs: Sequence[OpSpec]) -> List[Prediction]:
        value, lo, hi = self.predict_arrays(specs)
        return [Prediction(s.key, float(v), float(a), float(b)) for s, v, a, b in zip(specs, value, lo, hi)]

    def predict_arrays(self, specs: Sequence[OpSpec]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, low, high) in ms, one per spec; an identity costs exactly 0."""
        if self._fit is None:
            raise PredictorError("predict before fit")
        if not specs:
            empty = np.zeros(0)
            return empty, empty, empty
        log_v = self._fit.log_predict(features.prior_columns(specs), features.matrix(specs))
        value = np.exp(log_v)
        lo, hi = value * math.exp(self._bounds[0]), value * math.exp(self._bounds[1])
        zero = np.array([s.is_identity for s in specs])
        value[zero] = lo[zero] = hi[zero] = 0.0
        return value, lo, hi


def _dedupe(entries: Sequence[Tuple[OpSpec, float]]) -> Tuple[List[OpSpec], np.ndarray]:
    by_key: Dict[str, Tuple[OpSpec, List[float]]] = {}
    for spec, ms in entries:
        if not (isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0):
            raise PredictorError(f"{spec.key}: latency {ms!r} ms is not a positive number")
        if spec.is_identity:
            continue
        by_key.setdefault(spec.key, (spec, []))[1].append(float(ms))
    specs = [s for s, _ in by_key.values()]
    y = np.array([math.exp(sum(map(math.log, v)) / len(v)) for _, v in by_key.values()])
    return specs, y
