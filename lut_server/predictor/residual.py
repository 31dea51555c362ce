"""What the prior gets wrong, learned from the features: log(measured / prior) per op.

A ratio, not a latency: it stays near zero, varies smoothly with channel counts and map sizes,
and a tree ensemble over it cannot undo the prior's scale. Learners (``LEARNERS``):
``lightgbm+ridge`` (the default: the mean of the two; trees catch interactions, the ridge line
extrapolates smoothly, and their errors partly cancel: +1-2 points within +-10% over either
alone on the bench's LUTs, docs/predictor.md), ``lightgbm`` (several times faster than extra
trees and as accurate, which matters when the planner refits after every batch), ``extra-trees``
(scikit-learn), ``ridge`` (standardised features) and ``none`` (the prior alone).
"""

from __future__ import annotations

from typing import Any, List

import numpy as np

from lut_server.predictor.names import BLEND, LEARNERS


class ResidualModel:
    def __init__(self, learner: str = BLEND, seed: int = 0) -> None:
        if learner not in LEARNERS:
            raise ValueError(f"learner {learner!r}: must be one of {', '.join(LEARNERS)}")
        self.learner = learner
        self.seed = seed
        self._models: List[Any] = []
        self._mean = 0.0

    def _make(self, name: str, n: int) -> Any:
        if name == "extra-trees":
            from sklearn.ensemble import ExtraTreesRegressor

            return ExtraTreesRegressor(n_estimators=200, min_samples_leaf=2, max_features=0.5,
                                       random_state=self.seed, n_jobs=1)
        if name == "lightgbm":
            import lightgbm

            return lightgbm.LGBMRegressor(n_estimators=300, learning_rate=0.03, num_leaves=4,
                                          min_child_samples=max(2, min(5, n // 10)), subsample=0.8,
                                          subsample_freq=1, reg_lambda=1.0, random_state=self.seed,
                                          n_jobs=1, verbose=-1)
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 20)))

    def fit(self, x: np.ndarray, log_ratio: np.ndarray) -> ResidualModel:
        self._mean = float(np.mean(log_ratio)) if len(log_ratio) else 0.0
        self._models = []
        if self.learner == "none" or len(log_ratio) < 4:
            return self
        names = self.learner.split("+")
        self._models = [self._make(name, len(log_ratio)).fit(x, log_ratio) for name in names]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if not self._models:
            return np.full(len(x), self._mean if self.learner != "none" else 0.0)
        return np.mean([np.asarray(m.predict(x), dtype=float) for m in self._models], axis=0)
