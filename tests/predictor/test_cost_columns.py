"""The prior's newer columns: exp-based activations, grouped convolutions, bytes past the caches.

Each is checked on the kernel totals (what the column counts) and on a made-up target whose law
charges for it: the fitted predictor must tell apart two ops that differ only in that cost.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from lut_server.predictor import Predictor
from lut_server.predictor.primitives import ELEMENTWISE, KINDS, POINTWISE, SPILL_BYTES, kernels, totals
from lut_server.predictor.residual import ResidualModel
from lutcore.ops import InvertedResidual, OpSpec
from lutcore.spaces import get_space


def test_exp_elements_count_swish_and_the_sigmoid_gate_not_relu() -> None:
    relu = InvertedResidual(c_in=16, h=14, w=14, c_out=16, expansion=3, act="relu")
    swish = relu.replace(act="swish")
    m = relu.hidden
    assert totals(relu)[(ELEMENTWISE, "exp_elems")] == 0
    assert totals(swish)[(ELEMENTWISE, "exp_elems")] == 2 * m * 14 * 14  # after the expand and the depthwise conv
    se = swish.replace(se=0.25)  # the SE gate's sigmoid runs on one value per channel, its inner act is swish
    assert totals(se)[(ELEMENTWISE, "exp_elems")] == 2 * m * 14 * 14 + se.se_hidden + m


def test_grouped_macs_are_the_grouped_pointwise_convs_only() -> None:
    plain = InvertedResidual(c_in=32, h=8, w=8, c_out=32, expansion=2)
    grouped = plain.replace(groups=2)
    assert totals(plain)[(POINTWISE, "grouped_macs")] == 0
    assert totals(grouped)[(POINTWISE, "grouped_macs")] == totals(grouped)[(POINTWISE, "macs")] > 0


def test_spill_bytes_start_past_each_threshold() -> None:
    small = InvertedResidual(c_in=16, h=8, w=8, c_out=16)  # every kernel's working set well under 1 MiB
    big = small.replace(h=256, w=256)
    names = [f"bytes_past_{b >> 20}MiB" for b in SPILL_BYTES]
    assert all(totals(small)[(k, n)] == 0 for k in (POINTWISE, ELEMENTWISE) for n in names)
    first = sum(max(0.0, 4.0 * (k.elems_in + k.elems_out + k.weights) - SPILL_BYTES[0]) for k in kernels(big))
    past = {n: sum(v for (_, m), v in totals(big).items() if m == n) for n in names}
    assert past[names[0]] == first > 0
    assert 0 < past[names[1]] < first


def _law(spec: OpSpec) -> float:
    """ms: launches, MACs, bytes, plus 2 ns per element through an exp and 3x the MACs of grouped convs."""
    t = totals(spec)
    ms = sum(0.01 * t[(k, "count")] + 1e-8 * t[(k, "macs")] + 1e-9 * t[(k, "bytes")] for k in KINDS)
    return ms + 2e-6 * t[(ELEMENTWISE, "exp_elems")] + 2e-8 * t[(POINTWISE, "grouped_macs")]


def _pairs(acts: Tuple[str, ...]) -> List[Tuple[OpSpec, float]]:
    rng = np.random.default_rng(0)
    ops = [s for s in get_space("fbnet", "224x224").unique_ops().values() if not s.is_identity]
    out = []
    for s in ops:
        if s.family == "ir":
            for act in acts:
                s2 = s.replace(act=act)
                out.append((s2, _law(s2) * math.exp(rng.normal(0, 0.01))))
    return out


def test_the_prior_alone_learns_that_swish_costs_more_than_relu() -> None:
    p = Predictor("none").fit(_pairs(("relu", "swish")))
    relu = InvertedResidual(c_in=24, h=56, w=56, c_out=24, expansion=6, act="relu")
    v = p.predict_arrays([relu, relu.replace(act="swish")])[0]
    truth = _law(relu.replace(act="swish")) / _law(relu)
    assert truth > 1.3 and abs(v[1] / v[0] / truth - 1) < 0.05, (v[1] / v[0], truth)


def test_blend_is_the_mean_of_its_two_learners() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = np.sin(x[:, 0]) + 0.3 * x[:, 1]
    blend = ResidualModel("lightgbm+ridge", seed=1).fit(x, y).predict(x[:10])
    parts = [ResidualModel(n, seed=1).fit(x, y).predict(x[:10]) for n in ("lightgbm", "ridge")]
    np.testing.assert_allclose(blend, (parts[0] + parts[1]) / 2)
    assert not np.allclose(parts[0], parts[1])
