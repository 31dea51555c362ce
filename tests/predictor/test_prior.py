"""The linear prior: exact on data it can represent, non-negative, monotone in work."""

from __future__ import annotations

import numpy as np

from lut_server.predictor.prior import LinearPrior


def test_recovers_a_non_negative_law() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1e6, size=(40, 3))
    coef = np.array([2e-6, 0.0, 5e-7])
    y = x @ coef + 0.01
    p = LinearPrior().fit(x, y)
    np.testing.assert_allclose(p.predict(x), y, rtol=1e-6)
    assert p.coef is not None
    assert np.all(p.coef >= 0)
    np.testing.assert_allclose(p.coef, coef, rtol=1e-4, atol=1e-12)


def test_coefficients_stay_non_negative_when_the_data_pull_below_zero() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(1, 10, size=(30, 2))
    y = 3.0 * x[:, 0] - 0.5 * x[:, 1] + 20.0  # the second column "saves" time: the prior must not believe it
    p = LinearPrior().fit(x, y)
    assert p.coef is not None
    assert np.all(p.coef >= 0) and p.intercept >= 0
    more = x.copy()
    more[:, 1] *= 2
    assert np.all(p.predict(more) >= p.predict(x))


def test_unused_column_and_degenerate_data() -> None:
    x = np.zeros((5, 2))
    y = np.array([1.0, 2.0, 4.0, 2.0, 1.0])
    p = LinearPrior().fit(x, y)
    assert np.all(p.predict(x) > 0)
    assert p.coef is not None
    assert p.coef.tolist() == [0.0, 0.0]
