"""Conformal bounds: the finite-sample rank, and coverage close to what was asked on exchangeable data."""

from __future__ import annotations

import math

import numpy as np

from lut_server.predictor import conformal


def test_rank_and_bounds_on_known_errors() -> None:
    assert conformal.conformal_rank(9, 0.9) == 9
    assert conformal.conformal_rank(8, 0.9) == 9  # past the data
    errs = np.log(np.array([1.01, 0.98, 1.05, 0.9, 1.2, 1.02, 0.99, 1.03, 0.97]))
    lo, hi = conformal.bounds(errs, 0.9)
    assert math.isclose(hi, math.log(1.2)) and math.isclose(lo, -math.log(1.2))
    lo8, hi8 = conformal.bounds(errs[:8], 0.9)  # too few for the rank: wider than the worst error
    assert hi8 > abs(math.log(0.9)) and lo8 == -hi8


def test_empirical_coverage_matches_the_goal() -> None:
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(400):
        calib, new = rng.standard_t(3, size=39), rng.standard_t(3, size=50)
        lo, hi = conformal.bounds(calib, 0.9)
        covered.append(np.mean((new >= lo) & (new <= hi)))
    assert 0.89 <= float(np.mean(covered)) <= 0.94


def test_folds_partition_the_indices() -> None:
    fs = conformal.folds(23, 5, seed=3)
    joined = np.sort(np.concatenate(fs))
    assert joined.tolist() == list(range(23)) and len(fs) == 5
    assert len(conformal.folds(3, 10, 0)) == 3
