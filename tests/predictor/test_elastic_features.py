"""The predictor sees a width-elastic op's width: its hidden channels, whichever way the spec gives them."""

from __future__ import annotations

import math
from typing import Any, Dict

from lut_server.predictor.features import describe, matrix
from lut_server.predictor.primitives import DEPTHWISE, totals
from lutcore.ops import InvertedResidual
from lutcore.spaces import get_space


def test_a_mid_width_is_featurized_as_the_hidden_width() -> None:
    base: Dict[str, Any] = dict(c_in=24, h=28, w=28, c_out=40, stride=2, kernel=5, act="swish", se=1)
    narrow, wide = InvertedResidual(**base, mid=88), InvertedResidual(**base, mid=104)
    d = describe(narrow)
    assert d["log_hidden"] == math.log(88) and d["expansion"] == 88 / 24
    assert describe(InvertedResidual(**base, expansion=3))["expansion"] == 3.0
    assert totals(wide)[(DEPTHWISE, "macs")] == 14 * 14 * 104 * 25 > totals(narrow)[(DEPTHWISE, "macs")]


def test_every_op_of_the_elastic_space_has_a_distinct_finite_row() -> None:
    specs = list(get_space("tfnas-elastic", "96x96").unique_ops().values())
    m = matrix(specs)
    assert m.shape[0] == len(specs) and all(math.isfinite(x) for x in m.ravel())
    assert len({tuple(r) for r in m.tolist()}) == len(specs)  # no two widths look alike to the model
