"""The cost matrix C(i, j) as torch tensors, built from a server response, a LUT file, or MACs/params."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch

from search_client.errors import ClientError, MissingEntriesError

MISSING_MODES = ("error", "wait", "nan", "predict")
Number = Union[int, float]


@dataclasses.dataclass(frozen=True)
class FixedCost:
    """One op every architecture runs (stem, head, decoder) and its cost, None when unmeasured.

    ``predicted``: the value is the server's prediction (``missing="predict"``), in [``lo``, ``hi``]."""

    name: str
    key: Optional[str]
    value: Optional[float]
    predicted: bool = False
    lo: Optional[float] = None
    hi: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class CostMatrix:
    """C[i, j]: the cost of candidate j at layer i, with the mask of invalid candidates and the fixed cost.

    ``C`` holds 0 where ``mask`` is True (invalid candidate) and NaN for an unmeasured entry when built
    with ``missing="nan"``. ``fixed`` is the summed cost of the fixed ops (NaN if one is unmeasured).
    The tensors are shared with the client's cache: do not modify them in place (``clone()`` first).

    With ``missing="predict"`` unmeasured cells hold the server's prediction, never unflagged:
    ``predicted`` (bool, True = predicted) and ``lo``/``hi`` (each cell's 90% interval; a measured
    cell's is its value), ``fixed_lo``/``fixed_hi`` and ``prediction`` (how many, fitted on how many
    entries). ``missing`` still lists every unmeasured key. Without it these are None.
    """

    C: torch.Tensor
    mask: torch.Tensor
    fixed: float
    keys: List[List[Optional[str]]]
    candidates: List[str]
    coverage: Dict[str, Number]
    missing: List[str]
    fixed_ops: List[FixedCost]
    space: str
    resolution: Optional[str]
    target: Optional[str]
    metric: str
    lut_version: Optional[int] = None
    calibration: Optional[Mapping[str, Any]] = None
    predicted: Optional[torch.Tensor] = None
    lo: Optional[torch.Tensor] = None
    hi: Optional[torch.Tensor] = None
    fixed_lo: Optional[float] = None
    fixed_hi: Optional[float] = None
    prediction: Optional[Mapping[str, Any]] = None

    @property
    def shape(self) -> torch.Size:
        return self.C.shape

    @property
    def complete(self) -> bool:
        return not self.missing

    def to(self, device: Union[str, torch.device, None] = None, dtype: Optional[torch.dtype] = None) -> CostMatrix:
        """The same matrix with C (and lo/hi) on another device/dtype (the masks follow the device)."""
        return dataclasses.replace(
            self, C=self.C.to(device=device, dtype=dtype), mask=self.mask.to(device=device),
            predicted=None if self.predicted is None else self.predicted.to(device=device),
            lo=None if self.lo is None else self.lo.to(device=device, dtype=dtype),
            hi=None if self.hi is None else self.hi.to(device=device, dtype=dtype),
        )


def _float(v: Any) -> Optional[float]:
    return None if v is None else float(v)


def matrix_from_response(
    resp: Mapping[str, Any],
    *,
    metric: str,
    device: Union[str, torch.device, None] = None,
    dtype: torch.dtype = torch.float32,
    missing: str = "error",
    server: Optional[str] = None,
) -> CostMatrix:
    """A CostMatrix from a ``POST /cost-matrix``-shaped mapping (the server's, or one built from a LUT file).

    ``missing="error"`` raises MissingEntriesError when the response lists missing keys; otherwise
    unmeasured valid cells become NaN. ``missing="predict"`` needs a response the server predicted
    (asked with ``"missing": "predict"``); a missing key it could not predict raises MissingEntriesError.
    """
    if missing not in MISSING_MODES:
        raise ValueError(f"missing={missing!r} must be one of {', '.join(MISSING_MODES)}")
    try:
        rows = resp["matrix"]
        masks = resp["mask"]
        keys = [list(r) for r in resp["keys"]]
        candidates = list(resp["candidates"])
        miss = list(resp.get("missing") or [])
    except (KeyError, TypeError) as e:
        raise ClientError(f"cost-matrix response lacks field {e}; is the server speaking API v1?") from None
    space = str(resp.get("space", "?"))
    res = resp.get("resolution")
    target = resp.get("target")
    total = (resp.get("coverage") or {}).get("total")
    if miss and missing == "error":
        raise MissingEntriesError(miss, space, res, str(target), server, total)
    if missing == "predict":
        if "predicted" not in resp:
            raise ClientError(f"the cost matrix of {space} came without predictions; does the server "
                              f"({server}) support missing=\"predict\" (issue 20)?")
        left = _unpredicted(rows, masks, keys, resp.get("fixed", []))
        if left:
            raise MissingEntriesError(left, space, res, str(target), server, total)
    nan = math.nan
    values = [
        [0.0 if m else (nan if v is None else float(v)) for v, m in zip(row, mrow)] for row, mrow in zip(rows, masks)
    ]
    if len(values) != len(keys) or any(len(r) != len(candidates) for r in values):
        raise ClientError(f"cost-matrix response for {space}: matrix is not layers x {len(candidates)} candidates")
    C = torch.tensor(values, dtype=dtype, device=device)
    mask = torch.tensor(masks, dtype=torch.bool, device=device)
    fixed_ops = [FixedCost(f.get("name", "?"), f.get("key"), _float(f.get("value_ms")), bool(f.get("predicted")),
                           _float(f.get("lo_ms")), _float(f.get("hi_ms"))) for f in resp.get("fixed", [])]
    fixed_ms = resp.get("fixed_ms")
    if fixed_ms is None:
        fixed_ms = nan if any(f.value is None for f in fixed_ops) else sum(f.value or 0.0 for f in fixed_ops)
    cov = dict(resp.get("coverage") or {})
    return CostMatrix(
        C=C,
        mask=mask,
        fixed=float(fixed_ms),
        keys=keys,
        candidates=candidates,
        coverage=cov,
        missing=miss,
        fixed_ops=fixed_ops,
        space=space,
        resolution=res,
        target=None if target is None else str(target),
        metric=metric,
        lut_version=resp.get("lut_version"),
        calibration=resp.get("calibration"),
        **(_intervals(resp, masks, dtype, device) if missing == "predict" else {}),
    )


def _unpredicted(rows: Sequence[Sequence[Any]], masks: Sequence[Sequence[bool]],
                 keys: Sequence[Sequence[Optional[str]]], fixed: Sequence[Mapping[str, Any]]) -> List[str]:
    """Keys still without a value in a predicted response (ops of a family the predictor does not model)."""
    left = {k for row, mrow, krow in zip(rows, masks, keys) for v, m, k in zip(row, mrow, krow)
            if v is None and not m and k}
    left |= {f["key"] for f in fixed if f.get("value_ms") is None and f.get("key")}
    return sorted(left)


def _intervals(resp: Mapping[str, Any], masks: Sequence[Sequence[bool]], dtype: torch.dtype,
               device: Union[str, torch.device, None]) -> Dict[str, Any]:
    """The predicted mask and interval tensors of a ``missing="predict"`` response (0 at masked cells)."""
    def grid(name: str) -> torch.Tensor:
        vals = [[0.0 if m else float(v) for v, m in zip(row, mrow)] for row, mrow in zip(resp[name], masks)]
        return torch.tensor(vals, dtype=dtype, device=device)

    try:
        return {"predicted": torch.tensor(resp["predicted"], dtype=torch.bool, device=device),
                "lo": grid("lo"), "hi": grid("hi"), "fixed_lo": _float(resp.get("fixed_lo_ms")),
                "fixed_hi": _float(resp.get("fixed_hi_ms")), "prediction": resp.get("prediction")}
    except (KeyError, TypeError, ValueError) as e:
        raise ClientError(f"predicted cost-matrix response is malformed ({e})") from None


def response_from_values(
    space: Any,
    values: Mapping[str, Optional[float]],
    *,
    target: Optional[str],
    lut_version: Optional[int],
    calibration: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """A ``POST /cost-matrix``-shaped mapping for a lutcore Space from per-key values (None = unmeasured).

    Identity skips cost exactly 0 and count as measured, as on the server.
    """
    matrix: List[List[Optional[float]]] = []
    keys: List[List[Optional[str]]] = []
    missing: List[str] = []
    seen = set()
    measured = total = 0
    for row in space.grid:
        mrow: List[Optional[float]] = []
        krow: List[Optional[str]] = []
        for cell in row:
            key = getattr(cell, "key", None)
            krow.append(key)
            if key is None:
                mrow.append(None)
                continue
            v = 0.0 if cell.is_identity else values.get(key)
            mrow.append(v)
            if key not in seen:
                seen.add(key)
                total += 1
                if v is None:
                    missing.append(key)
                else:
                    measured += 1
        matrix.append(mrow)
        keys.append(krow)
    fixed = []
    for f in space.fixed:
        v = values.get(f.spec.key)
        fixed.append({"name": f.name, "key": f.spec.key, "value_ms": v})
        if f.spec.key not in seen:
            seen.add(f.spec.key)
            total += 1
            if v is None:
                missing.append(f.spec.key)
            else:
                measured += 1
    fixed_ms = None if any(f["value_ms"] is None for f in fixed) else sum(f["value_ms"] for f in fixed)
    return {
        "space": space.name,
        "resolution": space.resolution_str,
        "target": target,
        "lut_version": lut_version,
        "candidates": list(space.candidates),
        "layers": space.num_layers,
        "matrix": matrix,
        "mask": space.mask(),
        "keys": keys,
        "fixed": fixed,
        "fixed_ms": fixed_ms,
        "coverage": {"measured": measured, "total": total, "fraction": measured / total if total else 1.0},
        "missing": missing,
        "calibration": calibration,
    }


def _local_matrix(
    space: Any,
    cell_value: Any,
    fixed_value: float,
    metric: str,
    device: Union[str, torch.device, None],
    dtype: torch.dtype,
) -> CostMatrix:
    mask = space.mask()
    values = [[0.0 if m else float(cell_value(c)) for c, m in zip(row, mrow)] for row, mrow in zip(space.grid, mask)]
    fixed_ops = [FixedCost(f.name, f.spec.key, float(cell_value(f.spec))) for f in space.fixed]
    return CostMatrix(
        C=torch.tensor(values, dtype=dtype, device=device),
        mask=torch.tensor(mask, dtype=torch.bool, device=device),
        fixed=fixed_value,
        keys=space.key_matrix(),
        candidates=list(space.candidates),
        coverage={"measured": 1, "total": 1, "fraction": 1.0},
        missing=[],
        fixed_ops=fixed_ops,
        space=space.name,
        resolution=space.resolution_str,
        target=None,
        metric=metric,
    )


def mac_matrix(
    space: Any,
    resolution: Optional[str] = None,
    *,
    scale: float = 1e-6,
    device: Union[str, torch.device, None] = None,
    dtype: torch.dtype = torch.float32,
) -> CostMatrix:
    """Multiply-accumulates per (layer, candidate), in millions by default: SqueezeNAS's hardware-agnostic cost.

    Computed locally from the op specs; no server. Identity skips cost 0.
    """
    from search_client.spaces import chain_space

    sp = chain_space(space, resolution, "mac_matrix")
    return _local_matrix(sp, lambda s: s.macs() * scale, sp.fixed_macs() * scale, "macs", device, dtype)


def param_matrix(
    space: Any,
    resolution: Optional[str] = None,
    *,
    scale: float = 1e-6,
    device: Union[str, torch.device, None] = None,
    dtype: torch.dtype = torch.float32,
) -> CostMatrix:
    """Learnable parameters per (layer, candidate), in millions by default. Local, no server."""
    from search_client.spaces import chain_space

    sp = chain_space(space, resolution, "param_matrix")
    return _local_matrix(sp, lambda s: s.params() * scale, sp.fixed_params() * scale, "params", device, dtype)


def check_keys(local: Any, keys: Sequence[Sequence[Optional[str]]], where: str) -> None:
    """Fail loudly when the server lays out a space differently from this client's lutcore (version skew)."""
    mine = local.key_matrix()
    if [list(r) for r in mine] != [list(r) for r in keys]:
        for i, (a, b) in enumerate(zip(mine, keys)):
            if list(a) != list(b):
                diff = next(j for j, (x, y) in enumerate(zip(a, b)) if x != y) if len(a) == len(b) else 0
                raise ClientError(
                    f"{where} lays out {local.name} at {local.resolution_str} differently from this client: "
                    f"layer {i}, candidate {diff}: server {b[diff] if diff < len(b) else None!r}, "
                    f"client {a[diff] if diff < len(a) else None!r}. Are lutcore versions the same on both sides?"
                )
        raise ClientError(f"{where} gives {len(keys)} layers for {local.name}, this client {len(mine)}")
