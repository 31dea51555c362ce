"""In-context attribution: the whole-network engine's per-layer times mapped back to the network's blocks.

An op timed alone (its own engine) and the same op inside the network differ: the network fuses
across block borders, keeps tensors in cache, skips reformats. TensorRT's IProfiler reports
each engine layer's time in a separate profiling run (it synchronises after every layer, so
its total is not the network's time; the shares are what matter). Engine layer names carry
the ONNX node names they were fused from, and the TorchScript exporter names nodes by module
scope (``/layers.3/body/body.0/body.0.0/Conv``), so every layer maps to the block(s) it came
from; a layer fused across blocks (Myelin's ``{ForeignNode[/a/...Conv.../b/...Add]}``) is
split evenly between the blocks it spans. Nothing here imports tensorrt.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Sequence, Tuple

SCOPE = re.compile(r"/((?:stem|layers|head)\.\d+|decoder)(?=/)")
UNATTRIBUTED = "unattributed"


def network_scopes(arch: Any) -> List[Tuple[str, str]]:
    """(scope, op key) for every deployed block of ``lutcore.torch.Network``, in execution order."""
    space = arch.space
    out = [(f"stem.{i}", f.spec.key) for i, f in enumerate(space.stem)]
    layers = [s for s in arch.layer_ops() if not s.is_identity]
    out += [(f"layers.{i}", s.key) for i, s in enumerate(layers)]
    out += [(f"head.{i}", f.spec.key) for i, f in enumerate(space.head)]
    if space.decoder:
        out.append(("decoder", space.decoder.spec.key))
    return out


def scopes_of(layer_name: str, order: Sequence[str]) -> List[str]:
    """The block scopes one engine layer came from (a ForeignNode range expands to the blocks between)."""
    found: List[str] = []
    for m in SCOPE.finditer(layer_name):
        if m.group(1) not in found:
            found.append(m.group(1))
    if "ForeignNode[" in layer_name and "..." in layer_name and len(found) >= 2:
        idx = [order.index(s) for s in found if s in order]
        if idx:
            found = list(order[min(idx) : max(idx) + 1])
    return found


def attribute(layer_ms: Dict[str, float], arch: Any) -> Dict[str, Any]:
    """Per-block in-context ms (by scope and op key) from per-layer ms."""
    scopes = network_scopes(arch)
    order = [s for s, _ in scopes]
    per_scope: Dict[str, float] = {s: 0.0 for s in order}
    unattributed = 0.0
    for name, ms in layer_ms.items():
        hit = [s for s in scopes_of(name, order) if s in per_scope]
        if not hit:
            unattributed += ms
            continue
        for s in hit:
            per_scope[s] += ms / len(hit)
    total = sum(layer_ms.values())
    return {
        "blocks": [{"scope": s, "op": key, "ms": round(per_scope[s], 6)} for s, key in scopes],
        "unattributed_ms": round(unattributed, 6),
        "profiled_total_ms": round(total, 6),
        "layers": len(layer_ms),
    }


def make_profiler(trt: Any) -> Any:
    """An IProfiler that sums each layer's reported ms over the profiling runs."""

    class LayerTimes(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.ms: Dict[str, float] = {}
            self.runs = 0

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.ms[layer_name] = self.ms.get(layer_name, 0.0) + float(ms)

        def mean(self) -> Dict[str, float]:
            return {k: v / max(self.runs, 1) for k, v in self.ms.items()}

    return LayerTimes()
