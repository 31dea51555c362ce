"""The physical prior: latency as a non-negative sum of per-kernel work, fitted in relative error.

One coefficient per (kernel kind, MACs or bytes), one per kernel launch and a constant: ms per
pointwise MAC, per depthwise MAC, per element-wise byte, and so on. Shared by every family (a
block is the sum of its kernels), it needs far fewer measurements than a per-family fit, and
non-negative coefficients make it monotone in every column, MACs included. What it misses
(cache effects, channel counts that vectorise badly) is left to the residual model.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

FLOOR_MS = 1e-6


class LinearPrior:
    """``ms = columns @ coef + intercept`` with every coefficient >= 0."""

    def __init__(self) -> None:
        self.coef: Optional[np.ndarray] = None
        self.intercept = 0.0

    def fit(self, columns: np.ndarray, y_ms: np.ndarray) -> LinearPrior:
        """Least squares on relative errors (rows divided by the target): small ops weigh as much as large."""
        a = np.hstack([columns, np.ones((len(y_ms), 1))]) / y_ms[:, None]
        scale = np.abs(a).max(axis=0)
        scale[scale == 0] = 1.0  # a column no training op uses stays at 0
        from scipy.optimize import nnls  # 0.5 s to import: only when a predictor is fitted, not at server start

        coef, _ = nnls(a / scale, np.ones(len(y_ms)), maxiter=50 * a.shape[1])
        coef = coef / scale
        self.coef, self.intercept = coef[:-1], float(coef[-1])
        if not np.any(coef > 0):  # nothing fitted (degenerate data): a constant at the typical value
            self.intercept = float(np.exp(np.mean(np.log(y_ms))))
        return self

    def predict(self, columns: np.ndarray) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("LinearPrior.predict before fit")
        return np.maximum(columns @ self.coef + self.intercept, FLOOR_MS)
