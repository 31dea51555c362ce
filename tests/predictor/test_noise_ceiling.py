"""The bench's noise ceiling: an oracle scored against values as noisy as the LUT's own rounds."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from tests.predictor.benchmod import bench_predictor as _bench


def _doc(rounds: List[List[float]]) -> Dict[str, Any]:
    es = [{"key": f"op{i}", "measurements": [{"env": {"timing": {"rounds": {"medians_ms": r, "spread": 0.0}}}}]}
          for i, r in enumerate(rounds)]
    return {"targets": [{"id": "t", "entries": es}]}


def test_rounds_that_agree_leave_no_noise_and_wider_rounds_score_worse() -> None:
    oracle = _bench().noise_oracle
    exact = oracle(_doc([[1.0] * 5, [2.0] * 5]), "t")
    assert exact["oracle_median_abs_error"] == 0.0 and exact["oracle_within_10pct"] == 1.0
    rng = np.random.default_rng(0)
    tight = oracle(_doc([list(np.exp(rng.normal(0, 0.03, 5))) for _ in range(40)]), "t")
    loose = oracle(_doc([list(np.exp(rng.normal(0, 0.20, 5))) for _ in range(40)]), "t")
    assert 0 < tight["oracle_median_abs_error"] < 0.03 < loose["oracle_median_abs_error"]
    assert loose["oracle_within_10pct"] < tight["oracle_within_10pct"] <= 1.0
    assert oracle(_doc([[1.0, 1.0]]), "t") == {}  # too few rounds to see the noise
