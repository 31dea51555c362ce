"""The bench's per-family diagnosis: the families' contributions add up to the networks' errors."""

from __future__ import annotations

import numpy as np

from lut_server.predictor import Predictor
from lut_server.predictor.evaluation import evaluate
from lut_server.predictor.selection import random_share
from lutcore.spaces import get_arch, get_space, parse_arch_list
from tests.predictor import synthetic
from tests.predictor.benchmod import bench_predictor as load_bench


def test_family_contributions_sum_to_the_network_error() -> None:
    bench_predictor = load_bench()
    lut = synthetic.entries("squeezenas-small", "64x128", noise=0.02)
    archs = [get_arch(n, "64x128") for n in parse_arch_list("random:6", "squeezenas-small")]
    rows = bench_predictor.by_family(lut, get_space("squeezenas-small", "64x128"), archs, "ridge", "random", 0.25, 1)
    assert sum(r["ops"] for r in rows) == len(lut)
    assert {"ir", "lr_aspp", "skip:factorized_reduce"} <= {r["family"] for r in rows}
    held = sum(r["held_out"] for r in rows)
    assert held == len(lut) - len(random_share(len(lut), 0.25, 0))
    out = evaluate(lut, random_share(len(lut), 0.25, 0), Predictor("ridge", seed=0), archs)
    mean_error = float(np.mean([r["error"] for r in out["network_rows"]]))
    assert abs(sum(r["network_contribution"] for r in rows) - mean_error) < 1e-9
    assert rows[0]["network_abs_contribution"] >= rows[-1]["network_abs_contribution"]  # largest first
