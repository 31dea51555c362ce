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


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """What the fits read of a list of specs: both priors' columns, the residual's features, the families."""

    cols: np.ndarray
    phys: np.ndarray
    x: np.ndarray
    fams: np.ndarray

    @classmethod
    def of(cls, specs: Sequence[OpSpec]) -> _Inputs:
        return cls(features.prior_columns(specs), features.prior_columns(specs, features.PHYSICAL_COLUMNS),
                   features.matrix(specs), np.array([features.family_of(s) for s in specs], dtype=object))

    def take(self, idx: np.ndarray) -> _Inputs:
        return _Inputs(self.cols[idx], self.phys[idx], self.x[idx], self.fams[idx])


# A family with this many measured ops gets half its prediction from the learned model, half from the
# physical prior (weights n / (n + RARE)); with fewer, all from the physical prior.
RARE = 2


class _Fit:
    """Prior, its power-law calibration and the residual, fitted on one set of ops; and the physical prior.

    The calibration ``log y = a + b log prior`` lets latency grow faster or slower than the work
    (on a loaded machine long ops are preempted more often than short ones); trees cannot
    extrapolate that to the largest ops, a line in log-log can. The residual sees log(prior) too.

    The flexible prior (separate costs per byte for convolutions and element-wise passes) and the
    residual fit the measured families well, but an op of a family with few measured members runs
    kernels in proportions they never saw (a decoder's resizes): there the flexible prior's
    collinear coefficients misprice it (the element-wise byte cost fits to 0 on inverted residuals)
    and the residual has nothing to learn from; measured, such an op (a 0.14 ms classifier whose
    bytes are all weights) bends the shared fit for every other op. So the flexible prior and the
    residual (the learned model) are fitted on the ops of families with at least ``RARE`` measured
    members only; such a family with n members gets ``w = n / (n + RARE)`` of the learned model and
    the rest, in log space, from the physical prior (one cost per byte, ``features.PHYSICAL_COLUMNS``,
    fitted on every op, power-law calibrated the same way); a rarer family the physical prior alone.
    """

    def __init__(self, learner: str, seed: int, inp: _Inputs, y: np.ndarray) -> None:
        fams, counts = np.unique(inp.fams, return_counts=True)
        self.members = dict(zip(fams.tolist(), counts.tolist()))
        self.physical = LinearPrior().fit(inp.phys, y)
        self.p_slope, self.p_offset = _power_law(np.log(self.physical.predict(inp.phys)), np.log(y))
        common = ~self.rare(inp.fams)
        if common.sum() >= MIN_TRAIN:  # else (a tiny fold) the learned model sees every op
            inp, y = inp.take(np.flatnonzero(common)), y[common]
        self.prior = LinearPrior().fit(inp.cols, y)
        lp = np.log(self.prior.predict(inp.cols))
        self.slope, self.offset = _power_law(lp, np.log(y))
        base = self.offset + self.slope * lp
        self.residual = ResidualModel(learner, seed).fit(np.column_stack([inp.x, lp]), np.log(y) - base)

    def log_predict(self, inp: _Inputs) -> np.ndarray:
        lp = np.log(self.prior.predict(inp.cols))
        learned = self.offset + self.slope * lp + self.residual.predict(np.column_stack([inp.x, lp]))
        physical = self.p_offset + self.p_slope * np.log(self.physical.predict(inp.phys))
        n = np.array([self.members.get(f, 0) for f in inp.fams], dtype=float)
        w = np.where(n < RARE, 0.0, n / (n + RARE))
        return w * learned + (1.0 - w) * physical

    def rare(self, fams: np.ndarray) -> np.ndarray:
        """Per op: whether its family had fewer than ``RARE`` members here (the physical prior's alone)."""
        return np.array([self.members.get(f, 0) < RARE for f in fams], dtype=bool)


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
        self._bounds: Dict[bool, Tuple[float, float]] = {False: (-math.inf, math.inf), True: (-math.inf, math.inf)}
        self.n_train = 0
        self._folds: List[_Fit] = []

    def fit(self, entries: Sequence[Tuple[OpSpec, float]]) -> Predictor:
        """Fit on measured (spec, ms) pairs; a key given twice counts once, at its geometric mean."""
        specs, y = _dedupe(entries)
        if len(specs) < MIN_TRAIN:
            raise PredictorError(f"{len(specs)} measured op(s): the predictor needs at least {MIN_TRAIN}")
        inp = _Inputs.of(specs)
        self._fit = _Fit(self.learner, self.seed, inp, y)
        oof, rare = np.empty(len(y)), np.zeros(len(y), dtype=bool)
        self._folds = []
        for test in conformal.folds(len(y), self.folds, self.seed):
            train = np.setdiff1d(np.arange(len(y)), test)
            f = _Fit(self.learner, self.seed, inp.take(train), y[train])
            oof[test] = f.log_predict(inp.take(test))
            rare[test] = f.rare(inp.fams[test])
            self._folds.append(f)
        self._bounds = _bounds_by_regime(np.log(y) - oof, rare, self.coverage)
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
        inp = _Inputs.of(specs)
        return np.std(np.array([f.log_predict(inp) for f in self._folds]), axis=0)

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
        inp = _Inputs.of(specs)
        value = np.exp(self._fit.log_predict(inp))
        rare = self._fit.rare(inp.fams)
        lo_b, hi_b = (np.where(rare, self._bounds[True][i], self._bounds[False][i]) for i in (0, 1))
        lo, hi = value * np.exp(lo_b), value * np.exp(hi_b)
        zero = np.array([s.is_identity for s in specs])
        value[zero] = lo[zero] = hi[zero] = 0.0
        return value, lo, hi


def _bounds_by_regime(log_errors: np.ndarray, rare: np.ndarray, coverage: float) -> Dict[bool, Tuple[float, float]]:
    """Conformal bounds apart for ops of well-measured families and of rare ones, each from the
    cross-validated errors of ops predicted the same way: a rare family's op (mostly the physical
    prior) errs far more than a common one's, and pooled, the few rare errors would widen every
    interval (or, rare at predict time but not in the folds, be under-covered). A regime with no
    cross-validated op gets the pooled bounds widened by half, as past the data in ``conformal``."""
    pooled = conformal.bounds(log_errors, coverage)
    out = {}
    for regime in (False, True):
        e = log_errors[rare == regime]
        out[regime] = conformal.bounds(e, coverage) if len(e) else (1.5 * pooled[0], 1.5 * pooled[1])
    return out


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
