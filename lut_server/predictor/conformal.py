"""Calibrated intervals from cross-validated errors (split-conformal over K folds, in log space).

Each training op is predicted by a model that never saw it; the spread of those log errors,
taken at the conformal rank ``ceil((n + 1) * q)``, bounds a new op's error with probability ~q
whatever the model's faults.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np


def folds(n: int, k: int, seed: int) -> List[np.ndarray]:
    """``k`` disjoint index sets covering ``range(n)`` (k is capped at n)."""
    k = max(2, min(k, n))
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[i::k] for i in range(k)]


def conformal_rank(n: int, q: float) -> int:
    """The 1-based rank of the finite-sample conformal quantile (n + 1 when it lies past the data)."""
    return min(int(math.ceil((n + 1) * q)), n + 1)


def bounds(log_errors: np.ndarray, coverage: float) -> Tuple[float, float]:
    """(lower, upper) offsets in log space so that ``[pred * e^lower, pred * e^upper]`` covers ``coverage``.

    ``log_errors`` are log(measured / predicted). Symmetric in |error|: with a few dozen ops the
    two one-sided ranks would each land on the single worst error, while one rank on |error|
    uses the data twice as well. Beyond the data (too few ops for the rank) the worst error is
    widened by half, an honest "at least this wide".
    """
    e = np.sort(np.abs(np.asarray(log_errors, dtype=float)))
    n = len(e)
    if n == 0:
        return -math.inf, math.inf
    r = conformal_rank(n, coverage)
    q = float(e[r - 1]) if r <= n else 1.5 * float(e[-1])
    return -q, q
