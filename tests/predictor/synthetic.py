"""A made-up target whose latencies follow a hidden kernel-level law the predictor does not know exactly.

Each kernel costs a launch overhead, work at a speed that depends on the channel count (narrow
convolutions vectorise badly) and its bytes; each op gets seeded multiplicative noise. The law is
deliberately not the predictor's linear prior, so the learned residual has something to do.
"""

from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Tuple

from lut_server.predictor.primitives import DENSE, DEPTHWISE, POINTWISE, kernels
from lutcore.ops import OpSpec
from lutcore.spaces import get_space

TARGET = "cpu-test/pytorch-cpu/fp32@threads=1"


def true_ms(spec: OpSpec) -> float:
    ms = 0.0
    for k in kernels(spec):
        ms += 0.004  # launch
        ms += 4e-9 * (k.elems_in + k.elems_out)
        if k.kind in (POINTWISE, DENSE):
            width = max(k.elems_out, 1) / max(spec.h * spec.w, 1)
            ms += 2.5e-8 * k.macs * (1.0 + 8.0 / math.sqrt(max(width, 1.0)))
        elif k.kind == DEPTHWISE:
            ms += 1.2e-7 * k.macs
    return ms


def entries(space: str, resolution: str, noise: float = 0.02, seed: int = 0) -> List[Tuple[OpSpec, float]]:
    rng = random.Random(seed)
    ops = get_space(space, resolution).unique_ops()
    return [(s, true_ms(s) * math.exp(rng.gauss(0.0, noise))) for s in ops.values()]


def export_doc(pairs: List[Tuple[OpSpec, float]], target: str = TARGET) -> Dict[str, Any]:
    """A minimal nas-lut/1 document, as `lut export` writes its entries."""
    es = [{"key": s.key, "spec": s.to_dict(), "macs": s.macs(), "params": s.params(), "value_ms": v,
           "n_runs": 1, "measurements": []} for s, v in pairs]
    return {"schema": "nas-lut/1", "exported_at": "2026-11-30T00:00:00Z",
            "targets": [{"id": target, "lut_version": 1, "entries": es}], "devices": []}
