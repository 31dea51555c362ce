"""LUT prediction for one discrete architecture: the chosen ops plus the fixed cost, optionally calibrated.

The LUT-truth work fits ``measured = a * lut_sum + b + c * n_ops`` (lutcore.calibration.Calibration) per
space and target; n_ops counts the ops the network runs (identities dropped, fixed ops included).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from lutcore.calibration import Calibration
from lutcore.netsum import NetworkSum, network_sum
from search_client.errors import MissingEntriesError, StaleCalibrationWarning
from search_client.matrix import CostMatrix


def parse_calibration(obj: Any, space: Optional[str] = None, resolution: Optional[str] = None) -> Optional[Calibration]:
    """A lutcore Calibration from one, from ``{"a":, "b":, "c":}``, or from a mapping of ``"space@HxW"``,
    space name (or ``"default"``) to one, as a LUT export carries them; None when there is none for this space."""
    if obj is None or isinstance(obj, Calibration):
        return obj
    if not isinstance(obj, Mapping):
        raise ValueError(f"calibration must be a mapping with a and b, not {obj!r}")
    if any(k in obj for k in ("a", "b", "c")):
        try:
            return Calibration.from_dict(dict(obj))
        except (TypeError, ValueError):
            raise ValueError(f"calibration a/b/c must be numbers, got {dict(obj)!r}") from None
    for name in (f"{space}@{resolution}" if space and resolution else None, space, "default", "*"):
        if name is not None and name in obj:
            return parse_calibration(obj[name], None)
    return None


@dataclasses.dataclass(frozen=True)
class LatencyPrediction:
    """The LUT's prediction: ``ms`` (calibrated if a calibration applies) and its parts.

    ``predicted_ms`` is the part of ``lut_ms`` the server predicted (``missing="predict"``; 0 from a
    fully measured LUT), over ``predicted_ops`` of the ``n_ops`` ops; ``lo_ms``..``hi_ms`` bounds ``ms``
    by adding the predicted ops' interval bounds (lutcore.netsum ``linear``: measured ops add no width).
    """

    ms: float
    lut_ms: float
    fixed_ms: float
    layer_ms: List[float]
    choices: List[str]
    n_ops: int
    calibration: Optional[Calibration]
    predicted_ms: float = 0.0
    predicted_ops: int = 0
    lo_ms: Optional[float] = None
    hi_ms: Optional[float] = None

    @property
    def predicted_share(self) -> float:
        """The share of the LUT sum that is predicted, not measured."""
        return self.predicted_ms / self.lut_ms if self.lut_ms > 0 else 0.0

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
    missing = [cm.keys[i][j] or f"layer {i} candidate {j}" for i, j in enumerate(idx) if math.isnan(layer[i])]
    missing += [f.key for f in cm.fixed_ops if f.value is None and f.key]
    if missing:
        raise MissingEntriesError(sorted(set(missing)), cm.space, cm.resolution, str(cm.target), server)
    lut = sum(layer) + cm.fixed
    net = _network_sum(cm, idx, layer)
    cal = parse_calibration(cm.calibration if calibration == "auto" else calibration, cm.space, cm.resolution)
    info = cm.calibration or {}
    if cal is not None and calibration == "auto" and info.get("stale"):
        drift = info.get("drift")
        moved = (f"the LUT has since moved the sums it was fitted on by up to {100 * drift:.1f}%"
                 if drift is not None else "some of the space's entries changed since")
        warnings.warn(
            f"the calibration of {cm.space}@{cm.resolution} on {cm.target} was fitted at "
            f"{info.get('fitted_at')} (LUT version {info.get('fitted_lut_version')}); {moved}. "
            "The server queued a validate job that refits it when an agent of the target runs; or re-run "
            "`profiler-agent validate --server URL --calibrate`.",
            StaleCalibrationWarning, stacklevel=3)
    # as the LUT-truth validation counts them: the ops the network runs (identities dropped), fixed included
    n_ops = sum(1 for i, j in enumerate(idx) if not _identity(cm.keys[i][j])) + len(cm.fixed_ops)
    ends = sorted(cal.apply(v, n_ops) if cal else v for v in (net.lo_ms, net.hi_ms))  # a < 0 swaps them
    return LatencyPrediction(
        ms=cal.apply(lut, n_ops) if cal else lut,
        lut_ms=lut,
        fixed_ms=cm.fixed,
        layer_ms=layer,
        choices=[cm.candidates[j] for j in idx],
        n_ops=n_ops,
        calibration=cal,
        predicted_ms=net.predicted_ms,
        predicted_ops=net.predicted_ops,
        lo_ms=ends[0],
        hi_ms=ends[1],
    )


def _network_sum(cm: CostMatrix, idx: List[int], layer: List[float]) -> NetworkSum:
    """The chosen cells and fixed ops split into measured and predicted (with their intervals), summed
    by the rule the predictor's bench found to hold (``linear``: bounds added)."""
    keys: List[str] = []
    measured: Dict[str, float] = {}
    predicted: Dict[str, Tuple[float, float, float]] = {}
    for i, j in enumerate(idx):
        key = cm.keys[i][j] or f"layer {i} candidate {j}"
        keys.append(key)
        if cm.predicted is not None and cm.lo is not None and cm.hi is not None and bool(cm.predicted[i, j]):
            predicted[key] = (layer[i], float(cm.lo[i, j]), float(cm.hi[i, j]))
        else:
            measured[key] = layer[i]
    for n, f in enumerate(cm.fixed_ops):
        key = f.key or f"fixed {n}"
        keys.append(key)
        v = f.value or 0.0
        if f.predicted:
            predicted[key] = (v, v if f.lo is None else f.lo, v if f.hi is None else f.hi)
        else:
            measured[key] = v
    return network_sum(keys, measured, predicted, "linear")


def _identity(key: Optional[str]) -> bool:
    return bool(key) and key.startswith("skip:identity:")  # type: ignore[union-attr]
