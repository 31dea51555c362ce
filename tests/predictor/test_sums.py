"""A network's sum from measured and predicted cells, with its interval by each rule."""

from __future__ import annotations

import math

import pytest

from lut_server.predictor.sums import network_sum


def test_measured_cells_add_no_width_and_repeats_count() -> None:
    s = network_sum(["a", "b", "a"], {"a": 1.0, "b": 2.0}, {})
    assert (s.total_ms, s.lo_ms, s.hi_ms, s.predicted_ops, s.predicted_share) == (4.0, 4.0, 4.0, 0, 0.0)


def test_linear_adds_bounds_rss_adds_in_quadrature() -> None:
    predicted = {"p": (3.0, 2.0, 5.0), "q": (3.0, 2.0, 5.0)}
    lin = network_sum(["m", "p", "q"], {"m": 4.0}, predicted, "linear")
    rss = network_sum(["m", "p", "q"], {"m": 4.0}, predicted, "rss")
    assert (lin.total_ms, lin.lo_ms, lin.hi_ms) == (10.0, 8.0, 14.0)
    assert rss.total_ms == 10.0 and math.isclose(rss.lo_ms, 10 - math.sqrt(2))
    assert math.isclose(rss.hi_ms, 10 + math.sqrt(8))
    assert lin.predicted_ms == 6.0 and lin.predicted_share == 0.6 and lin.predicted_ops == 2 and lin.ops == 3


def test_a_measured_value_wins_and_unknown_keys_or_rules_fail() -> None:
    s = network_sum(["a"], {"a": 1.0}, {"a": (9.0, 8.0, 10.0)})
    assert s.total_ms == 1.0 and s.predicted_ops == 0
    with pytest.raises(KeyError):
        network_sum(["zz"], {}, {})
    with pytest.raises(ValueError, match="rule"):
        network_sum(["a"], {"a": 1.0}, {}, "max")
