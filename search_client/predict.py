"""LUT prediction for one discrete architecture: the chosen ops plus the fixed cost, optionally calibrated.

The LUT-truth work fits ``measured = a * lut_sum + b`` per space and target; a Calibration applies it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, List, Mapping, Optional, Sequence, Union

import torch

from search_client.errors import MissingEntriesError
from search_client.matrix import CostMatrix


@dataclasses.dataclass(frozen=True)
class Calibration:
    """``measured = a * lut_sum + b`` (b in ms)."""

    a: float = 1.0
    b: float = 0.0
    source: str = ""

    def __call__(self, lut_ms: float) -> float:
        return self.a * lut_ms + self.b

    @classmethod
    def parse(cls, obj: Any, space: Optional[str] = None, source: str = "") -> Optional["Calibration"]:
        """From a Calibration, ``{"a":, "b":}``, or a mapping of space name (or "default") to one; None if absent."""
        if obj is None or isinstance(obj, Calibration):
            return obj
        if not isinstance(obj, Mapping):
            raise ValueError(f"calibration must be a mapping with a and b, not {obj!r}")
        if "a" in obj or "b" in obj:
            try:
                return cls(float(obj.get("a", 1.0)), float(obj.get("b", 0.0)), source)
            except (TypeError, ValueError):
                raise ValueError(f"calibration a/b must be numbers, got {dict(obj)!r}") from None
        for name in (space, "default", "*"):
            if name is not None and name in obj:
                return cls.parse(obj[name], None, source)
        return None


@dataclasses.dataclass(frozen=True)
class LatencyPrediction:
    """The LUT's prediction: ``ms`` (calibrated if a calibration applies) and its parts."""

    ms: float
    lut_ms: float
    fixed_ms: float
    layer_ms: List[float]
    choices: List[str]
    calibration: Optional[Calibration]

    def __float__(self) -> float:
        return self.ms


Choices = Union[Sequence[str], Sequence[int], torch.Tensor, Any]


def choice_indices(cm: CostMatrix, choices: Choices) -> List[int]:
    """Candidate index per layer from names, indices, a lutcore Arch, or a tensor (indices, or [L, K] weights)."""
    if hasattr(choices, "choices") and hasattr(choices, "space"):  # a lutcore Arch
        choices = list(choices.choices)
    if isinstance(choices, torch.Tensor):
        choices = (choices.argmax(dim=-1) if choices.dim() == 2 else choices).tolist()
    choices = list(choices)
    n = cm.C.shape[0]
    if len(choices) != n:
        raise ValueError(f"{len(choices)} choices given, {cm.space} has {n} layers")
    out = []
    for i, c in enumerate(choices):
        if isinstance(c, str):
            if c not in cm.candidates:
                raise ValueError(f"choices[{i}]={c!r} is not a candidate; known: {', '.join(cm.candidates)}")
            j = cm.candidates.index(c)
        else:
            j = int(c)
            if not 0 <= j < len(cm.candidates):
                raise ValueError(f"choices[{i}]={j} is out of range 0..{len(cm.candidates) - 1}")
        if bool(cm.mask[i, j]):
            raise ValueError(f"choices[{i}]={cm.candidates[j]!r} is not a valid candidate at layer {i}")
        out.append(j)
    return out


def predict_from_matrix(
    cm: CostMatrix,
    choices: Choices,
    calibration: Any = "auto",
    server: Optional[str] = None,
) -> LatencyPrediction:
    """Sum of the chosen cells plus the fixed cost; ``calibration="auto"`` uses the LUT's own if it has one."""
    idx = choice_indices(cm, choices)
    row = cm.C.detach().to("cpu", torch.float64)
    layer = [float(row[i, j]) for i, j in enumerate(idx)]
    missing = [cm.keys[i][j] for i, j in enumerate(idx) if math.isnan(layer[i])]
    missing += [f.key for f in cm.fixed_ops if f.value is None and f.key]
    if missing:
        raise MissingEntriesError(sorted(set(missing)), cm.space, cm.resolution, str(cm.target), server)
    lut = sum(layer) + cm.fixed
    cal = Calibration.parse(cm.calibration, cm.space, "lut") if calibration == "auto" else Calibration.parse(
        calibration, cm.space, "given"
    )
    return LatencyPrediction(
        ms=cal(lut) if cal else lut,
        lut_ms=lut,
        fixed_ms=cm.fixed,
        layer_ms=layer,
        choices=[cm.candidates[j] for j in idx],
        calibration=cal,
    )
