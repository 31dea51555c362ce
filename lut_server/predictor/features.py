"""Numbers the models see for an op spec: what the spec says, what its kernels cost, and the prior's columns.

Sizes enter as logarithms (latency spans four decades and effects are multiplicative); flags and
small integers enter as they are. Every op family has the same columns, so one model serves a
target whatever spaces its LUT holds.
"""

from __future__ import annotations

import functools
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from lut_server.predictor.primitives import DENSE, DEPTHWISE, ELEMENTWISE, KINDS, MEASURES, POINTWISE, totals
from lutcore.ops import ACTIVATIONS, OpSpec, families

FAMILIES = tuple(families())

# The linear prior's columns, each a sum over kernel kinds: convolution work, depthwise work, bytes
# moved by convolutions and by element-wise passes, launches. All >= 0, so non-negative coefficients
# keep predictions monotone in each (more MACs never costs less). Few columns on purpose: a column
# only one or two measured ops use (a stem's dense conv) would get a wild coefficient. The last three
# (elements through exp-based activations, bytes past the caches) took the 25% bench's op median
# from 5.0% to 4.6% on squeezenas-xlarge and from 5.6% to 4.6% on tfnas (docs/predictor.md).
PRIOR_COLUMNS: Tuple[Tuple[Tuple[str, ...], str], ...] = (
    ((POINTWISE, DENSE), "macs"),
    ((DEPTHWISE,), "macs"),
    ((POINTWISE, DEPTHWISE, DENSE), "bytes"),
    ((ELEMENTWISE,), "bytes"),
    (KINDS, "count"),
    ((ELEMENTWISE,), "exp_elems"),
    ((POINTWISE, DENSE), "grouped_macs"),
    *((KINDS, m) for m in MEASURES[5:]),
)


# The physical prior's columns: every byte costs the same whichever kernel moves it (one bandwidth), so
# work unlike the measured ops' (a decoder's resizes and concatenations) is priced by what moving it
# costs. Fitted on the same ops, it is the model for an op whose family has few measured members.
PHYSICAL_COLUMNS: Tuple[Tuple[Tuple[str, ...], str], ...] = (
    ((POINTWISE, DENSE), "macs"),
    ((DEPTHWISE,), "macs"),
    (KINDS, "bytes"),
    *PRIOR_COLUMNS[4:],
)


def family_of(spec: OpSpec) -> str:
    """An op's family for counting measured members: a skip's mode is a different op."""
    mode = getattr(spec, "mode", None)
    return f"{spec.family}:{mode}" if isinstance(mode, str) else spec.family


def _num(spec: OpSpec, name: str, default: float = 0.0) -> float:
    v = getattr(spec, name, default)
    return float(v) if isinstance(v, (int, float)) else default


def _log(x: float) -> float:
    return math.log(1.0 + max(x, 0.0))


def describe(spec: OpSpec) -> Dict[str, float]:
    """The residual model's features of one op (names are stable; order is ``feature_names()``)."""
    ho, wo = spec.out_hw if spec.family != "pool_fc" else (1, 1)
    t = totals(spec)
    kernel = _num(spec, "kernel", 1.0)
    hidden = _num(spec, "hidden", float(spec.c_in)) if spec.family == "ir" else float(spec.c_in)
    groups = _num(spec, "groups", 1.0)
    d: Dict[str, float] = {f"family={f}": float(spec.family == f) for f in FAMILIES}
    act = getattr(spec, "act", "none")
    d.update({f"act={a}": float(act == a) for a in ACTIVATIONS})
    d.update({
        "kernel": kernel,
        "stride": float(spec.stride),
        "dilation": _num(spec, "dilation", 1.0),
        "log_groups": math.log(groups),
        "expansion": hidden / spec.c_in,  # a width-elastic op gives its width as ``mid``, not ``expansion``
        "se": _num(spec, "se"),
        "residual": float(bool(getattr(spec, "residual", False))),
        "log_c_in": math.log(spec.c_in),
        "log_c_out": math.log(spec.c_out),
        "log_hidden": math.log(max(hidden, 1.0)),
        "log_h": math.log(spec.h),
        "log_w": math.log(spec.w),
        "log_hw_out": math.log(max(ho * wo, 1)),
        "log_batch": math.log(spec.batch),
        "log_macs": _log(spec.macs()),
        "log_params": _log(spec.params()),
        "log_bytes_in": _log(4.0 * spec.c_in * spec.h * spec.w * spec.batch),
        "log_bytes_out": _log(4.0 * spec.c_out * ho * wo * spec.batch),
        "log_launches": _log(sum(t[(k, "count")] for k in KINDS)),
    })
    for k in KINDS:
        d[f"log_{k}_bytes"] = _log(t[(k, "bytes")])
        if k != ELEMENTWISE:
            d[f"log_{k}_macs"] = _log(t[(k, "macs")])
    return d


@functools.lru_cache(maxsize=1)
def _names() -> Tuple[str, ...]:
    from lutcore.ops import Conv

    return tuple(describe(Conv(c_in=8, h=8, w=8, c_out=8)))


def feature_names() -> List[str]:
    """Column order of ``matrix``: fixed, so a saved model reads new specs the same way."""
    return list(_names())


def matrix(specs: Sequence[OpSpec]) -> np.ndarray:
    names = feature_names()
    rows = [describe(s) for s in specs]
    return np.array([[r[n] for n in names] for r in rows], dtype=float).reshape(len(specs), len(names))


Columns = Sequence[Tuple[Tuple[str, ...], str]]


def prior_columns(specs: Sequence[OpSpec], columns: Columns = PRIOR_COLUMNS) -> np.ndarray:
    """Raw (not logged) work per column of ``columns`` for a linear prior, one row per op."""
    rows = []
    for s in specs:
        t = totals(s)
        rows.append([sum(t[(k, m)] for k in kinds) for kinds, m in columns])
    return np.array(rows, dtype=float).reshape(len(specs), len(columns))
