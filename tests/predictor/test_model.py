"""The predictor on a made-up target: accurate where it should be, honest intervals, clear refusals."""

from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np
import pytest

from lut_server.predictor import Predictor, PredictorError
from lut_server.predictor.evaluation import evaluate
from lut_server.predictor.selection import random_share
from lutcore.ops import InvertedResidual, Skip
from lutcore.spaces import get_arch, parse_arch_list
from tests.predictor import synthetic


@pytest.fixture(scope="module")
def lut() -> list:
    return synthetic.entries("squeezenas-small", "128x256", noise=0.02)


@pytest.mark.parametrize("learner", ["extra-trees", "lightgbm", "ridge"])
def test_beats_the_prior_alone_and_holds_its_coverage(lut: list, learner: str) -> None:
    pytest.importorskip("lightgbm") if learner == "lightgbm" else None
    scores: Dict[str, List[Dict[str, Any]]] = {name: [] for name in (learner, "none")}
    for seed in range(3):
        train = random_share(len(lut), 0.25, seed)
        for name in scores:
            scores[name].append(evaluate(lut, train, Predictor(name, seed=seed)))
    med = {n: float(np.mean([r["median_abs_error"] for r in rs])) for n, rs in scores.items()}
    assert med[learner] < 0.06, med
    assert med[learner] < med["none"], med
    cov = float(np.mean([r["interval_coverage"] for r in scores[learner]]))
    assert 0.8 <= cov <= 1.0


def test_network_sums_from_a_partly_predicted_lut(lut: list) -> None:
    """Over three splits: one split leaves the decoder (the only op of its family) unmeasured and once
    put a network median at 33% (the flexible prior alone); the physical prior for rare families keeps
    the mean under 5%."""
    archs = [get_arch(n, "128x256") for n in parse_arch_list("published,random:10", "squeezenas-small")]
    meds = []
    for seed in range(3):
        out = evaluate(lut, random_share(len(lut), 0.5, seed), Predictor("ridge"), archs)
        meds.append(out["network_median_abs_error"])
    assert out["networks"] == 12 and len(out["network_rows"]) == 12
    assert float(np.mean(meds)) < 0.05, meds
    row = out["network_rows"][0]
    assert 0 < row["predicted_ops"] <= row["ops"] and row["measured_ms"] > 0
    assert row["lo_ms_linear"] <= row["lo_ms_rss"] <= row["filled_ms"] <= row["hi_ms_rss"] <= row["hi_ms_linear"]
    assert out["network_interval_coverage_linear"] >= out["network_interval_coverage_rss"]


def test_intervals_contain_the_value_and_identity_costs_nothing(lut: list) -> None:
    p = Predictor("ridge").fit(lut[:40])
    ident = Skip(c_in=16, h=8, w=8, c_out=16)
    preds = p.predict([s for s, _ in lut[40:50]] + [ident])
    for q in preds[:-1]:
        assert 0 < q.lo_ms < q.value_ms < q.hi_ms
    assert (preds[-1].value_ms, preds[-1].lo_ms, preds[-1].hi_ms) == (0.0, 0.0, 0.0)
    assert preds[0].key == lut[40][0].key and p.n_train == 40


def test_a_key_given_twice_counts_once(lut: list) -> None:
    spec, ms = lut[0]
    p = Predictor("none").fit(lut[:10] + [(spec, ms * 4.0)])
    assert p.n_train == 10


def test_more_macs_never_predicts_less_under_the_prior() -> None:
    pairs = synthetic.entries("fbnet", "224x224", noise=0.0)
    p = Predictor("none").fit(pairs)
    small = InvertedResidual(c_in=32, h=28, w=28, c_out=32, expansion=3)
    big = small.replace(expansion=6)
    v = p.predict_arrays([small, big])[0]
    assert v[1] > v[0]


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_refuses_non_positive_or_non_finite_latencies(lut: list, bad: float) -> None:
    with pytest.raises(PredictorError, match="not a positive number"):
        Predictor().fit(lut[:10] + [(lut[10][0], bad)])


def test_refuses_too_few_entries_and_predict_before_fit(lut: list) -> None:
    with pytest.raises(PredictorError, match="at least 8"):
        Predictor().fit(lut[:3])
    with pytest.raises(PredictorError, match="before fit"):
        Predictor().predict([lut[0][0]])
    with pytest.raises(PredictorError, match="coverage"):
        Predictor(coverage=1.5)
    with pytest.raises(ValueError, match="learner"):
        Predictor(learner="magic")
