"""Cost tensors of cell spaces (DARTS, AutoRTNet) and AutoRTNet's latency loss.

A cell space's cost is not one [layers x candidates] matrix: every cell i has an [edges x ops] cost
``C[i]`` (cells of one type share their op weights but sit at different shapes), a preprocessing cost
``pre[i]``, and a hyper-cell's depth d keeps its cells 1..d and adds ``depth[h][d-1]`` (ops that exist
only at that depth). With edge weights p[type] and depth weights beta[h]:

    latency = fixed + sum_i gate_i * (pre_i + sum_eo p[type_i][e, o] C[i][e, o]) + sum_h beta_h . depth_h

where gate_i = 1 outside hyper-cells and P(depth_h >= position_i) = sum_{d >= position_i} beta_h[d] inside
(AutoRTNet eq. 7 with depth gated by the hyper-cell's edge probabilities). The structure (which key sits at
which cell, edge and op) is lutcore's ``CellLayout``; this module only puts values into it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from lutcore.spaces.cells import CellArch, CellLayout, CellValues
from search_client.errors import ClientError, MissingEntriesError
from search_client.predict import LatencyPrediction, parse_calibration

Device = Union[str, torch.device, None]


CELL_MISSING_MODES = ("error", "nan", "predict")


@dataclasses.dataclass(frozen=True)
class CellBound:
    """The costs at one end of the predicted keys' intervals (a measured key counts its value)."""

    C: torch.Tensor
    pre: torch.Tensor
    depth: List[torch.Tensor]
    fixed: float
    add: torch.Tensor  # [cells] what a node without input gives back

    def to(self, device: Device = None, dtype: Optional[torch.dtype] = None) -> CellBound:
        return CellBound(self.C.to(device=device, dtype=dtype), self.pre.to(device=device, dtype=dtype),
                         [d.to(device=device, dtype=dtype) for d in self.depth], self.fixed,
                         self.add.to(device=device, dtype=dtype))


@dataclasses.dataclass(frozen=True)
class CellCosts:
    """Per-cell [edges x ops] costs ``C`` [cells, edges, ops], ``pre`` [cells], the cell's ``cell_type``,
    ``hyper`` (-1 outside hyper-cells) and 1-based ``position``, ``depth`` [hyper][depth - 1], ``fixed``.

    Zero ops and identity skips cost exactly 0; an unmeasured entry is NaN (``missing="nan"``).
    With ``missing="predict"`` unmeasured entries hold the server's predictions, never unflagged:
    ``predicted`` (bool [cells, edges, ops], True = C's value is predicted), ``predictions`` (every
    predicted key: value, lo, hi, including preprocessing, depth and fixed ops), ``lo``/``hi`` (the costs
    at the intervals' ends) and ``prediction`` (how many, fitted on how many entries); ``coverage`` and
    ``missing`` still count measured entries only. Without it these are None (``predictions`` empty).
    """

    C: torch.Tensor
    pre: torch.Tensor
    cell_type: torch.Tensor
    hyper: torch.Tensor
    position: torch.Tensor
    depth: List[torch.Tensor]
    fixed: float
    layout: CellLayout
    missing: List[str]
    coverage: Dict[str, Any]
    target: Optional[str]
    metric: str
    lut_version: Optional[int] = None
    calibration: Optional[Mapping[str, Any]] = None
    predicted: Optional[torch.Tensor] = None
    predictions: Mapping[str, Tuple[float, float, float]] = dataclasses.field(default_factory=dict)
    lo: Optional[CellBound] = None
    hi: Optional[CellBound] = None
    prediction: Optional[Mapping[str, Any]] = None
    add: Optional[torch.Tensor] = None  # [cells] one node-sum add: what each node without input gives back

    @property
    def space(self) -> str:
        return self.layout.space

    @property
    def resolution(self) -> str:
        return self.layout.resolution

    @property
    def ops(self) -> List[str]:
        return list(self.layout.ops)

    @property
    def cell_types(self) -> List[str]:
        return list(self.layout.cell_types)

    def edge_costs(self) -> torch.Tensor:
        """[types, edges, ops]: each type's C(edge, op) summed over its cells, all cells kept (DARTS's C)."""
        T = len(self.layout.cell_types)
        out = torch.zeros((T,) + tuple(self.C.shape[1:]), dtype=self.C.dtype, device=self.C.device)
        return out.index_add(0, self.cell_type, self.C)

    def cell_costs(self, p: torch.Tensor) -> torch.Tensor:
        """Expected cost of every cell under edge weights ``p`` [types, edges, ops] (its preprocessing included)."""
        if p.shape != (len(self.layout.cell_types),) + tuple(self.C.shape[1:]):
            raise ValueError(f"edge weights of shape {tuple(p.shape)}; expected "
                             f"[{len(self.layout.cell_types)} types, {self.C.shape[1]} edges, {self.C.shape[2]} ops]")
        C = self.C.to(p.dtype)
        out = self.pre.to(p.dtype) + (p[self.cell_type] * C).sum(dim=(-2, -1))
        z = self.layout.zero_op
        if self.add is None or z is None:
            return out
        # a node runs (inputs - 1) adds, none without inputs: give back one add times P(every edge is zero)
        p0 = p[self.cell_type][:, :, z]
        empty = torch.stack([p0[:, es].prod(-1) for es in self.layout.node_edges], -1).sum(-1)
        return out + self.add.to(p.dtype) * empty

    def depth_options(self, p: torch.Tensor) -> List[torch.Tensor]:
        """Per hyper-cell, [N_h]: its expected cost at each depth d under edge weights ``p`` (cells 1..d and
        the ops that exist at depth d)."""
        cc = self.cell_costs(p)
        out = []
        for h, extra in enumerate(self.depth):
            idx = (self.hyper == h).nonzero().flatten()
            order = self.position[idx].argsort()
            out.append(torch.cumsum(cc[idx[order]], 0) + extra.to(p.dtype))
        return out

    def to(self, device: Device = None, dtype: Optional[torch.dtype] = None) -> CellCosts:
        return dataclasses.replace(
            self, C=self.C.to(device=device, dtype=dtype), pre=self.pre.to(device=device, dtype=dtype),
            cell_type=self.cell_type.to(device), hyper=self.hyper.to(device), position=self.position.to(device),
            depth=[d.to(device=device, dtype=dtype) for d in self.depth],
            predicted=None if self.predicted is None else self.predicted.to(device),
            lo=None if self.lo is None else self.lo.to(device, dtype),
            hi=None if self.hi is None else self.hi.to(device, dtype),
            add=None if self.add is None else self.add.to(device=device, dtype=dtype),
        )


def cell_costs_from_values(
    layout: CellLayout,
    values: Mapping[str, Optional[float]],
    *,
    target: Optional[str] = None,
    metric: str = "median_ms",
    lut_version: Optional[int] = None,
    calibration: Optional[Mapping[str, Any]] = None,
    missing: str = "error",
    device: Device = None,
    dtype: torch.dtype = torch.float32,
    server: Optional[str] = None,
) -> CellCosts:
    """Fill a layout with per-key values (None or absent = unmeasured; identities cost 0)."""
    if missing == "predict":
        raise ClientError('missing="predict" needs a server\'s predictions: use LUTClient(url).cell_costs')
    return _tensors(layout, layout.fill(values), target, metric, lut_version, calibration, missing, device, dtype,
                    server)


def cell_costs_from_response(
    resp: Mapping[str, Any],
    local: Optional[CellLayout] = None,
    *,
    metric: str = "median_ms",
    missing: str = "error",
    device: Device = None,
    dtype: torch.dtype = torch.float32,
    server: Optional[str] = None,
) -> CellCosts:
    """From a ``POST /cell-costs`` answer; ``local`` (lutcore's layout of the same space) must equal the
    server's, else the two run different lutcore versions and the keys would sit in the wrong places.
    ``missing="predict"`` needs an answer the server predicted (asked with ``"missing": "predict"``); a
    key it could not predict raises MissingEntriesError."""
    layout = CellLayout.from_dict(resp["layout"])
    if local is not None and local != layout:
        raise ClientError(f"the server at {server} lays out {layout.space}@{layout.resolution} differently from "
                          "this client's lutcore (version skew); upgrade one of them")
    try:
        vals = CellValues(resp["C"], resp["pre"], resp["depth"], [f["value_ms"] for f in resp["fixed"]],
                          resp["fixed_ms"], list(resp["missing"]), dict(resp["coverage"]), list(resp.get("add") or []))
    except (KeyError, TypeError) as e:
        raise ClientError(f"the server at {server} sent no cell costs ({e!r})") from None
    costs = _tensors(layout, vals, resp.get("target"), metric, resp.get("lut_version"), resp.get("calibration"),
                     "nan" if missing == "predict" else missing, device, dtype, server)
    return _predicted(costs, resp, server, dtype) if missing == "predict" else costs


def _predicted(costs: CellCosts, resp: Mapping[str, Any], server: Optional[str], dtype: torch.dtype) -> CellCosts:
    """``costs`` with the flags and intervals of a ``missing="predict"`` answer; unpredicted keys raise."""
    if "predicted" not in resp or resp["predicted"] is None:
        raise ClientError(f"the cell costs of {costs.space} came without predictions; does the server ({server}) "
                          'support missing="predict" for cell spaces (issue 20)?')
    try:
        preds = {k: (float(v["value_ms"]), float(v["lo_ms"]), float(v["hi_ms"])) for k, v in resp["predicted"].items()}
        left = sorted(k for k in costs.missing if k not in preds)
        if left:
            raise MissingEntriesError(left, costs.space, costs.resolution, str(costs.target), server,
                                      costs.coverage.get("total"))
        dev = costs.C.device

        def bound(d: Mapping[str, Any], fixed: Any) -> CellBound:
            def t(x: Any) -> torch.Tensor:
                return torch.tensor(x, dtype=dtype, device=dev)

            add = d.get("add")
            return CellBound(t(d["C"]), t(d["pre"]), [t(x) for x in d["depth"]], float(fixed),
                             t(add) if add else costs.add if costs.add is not None else t([0.0] * len(d["pre"])))

        return dataclasses.replace(
            costs, predicted=torch.tensor(resp["predicted_cells"], dtype=torch.bool, device=dev), predictions=preds,
            lo=bound(resp["lo"], resp["fixed_lo_ms"]), hi=bound(resp["hi"], resp["fixed_hi_ms"]),
            prediction=resp.get("prediction"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ClientError(f"predicted cell costs from {server} are malformed ({e!r})") from None


def _nan(v: Optional[float]) -> float:
    return math.nan if v is None else float(v)


def _tensors(
    layout: CellLayout, vals: CellValues, target: Optional[str], metric: str, lut_version: Optional[int],
    calibration: Optional[Mapping[str, Any]], missing: str, device: Device, dtype: torch.dtype, server: Optional[str],
) -> CellCosts:
    if missing not in ("error", "nan"):
        raise ValueError(f"missing={missing!r} must be one of {', '.join(CELL_MISSING_MODES)}")
    if vals.missing and missing == "error":
        raise MissingEntriesError(vals.missing, layout.space, layout.resolution, str(target), server,
                                  vals.coverage["total"])
    return CellCosts(
        C=torch.tensor([[[_nan(v) for v in row] for row in c] for c in vals.C], dtype=dtype, device=device),
        pre=torch.tensor([_nan(v) for v in vals.pre], dtype=dtype, device=device),
        cell_type=torch.tensor([c.type_index for c in layout.cells], dtype=torch.long, device=device),
        hyper=torch.tensor([c.hyper for c in layout.cells], dtype=torch.long, device=device),
        position=torch.tensor([c.position for c in layout.cells], dtype=torch.long, device=device),
        depth=[torch.tensor([_nan(v) for v in per], dtype=dtype, device=device) for per in vals.depth],
        fixed=_nan(vals.fixed_ms),
        # an older server sends no adds: then a node without input is counted as the layout once did (-1 add)
        add=torch.tensor([_nan(v) for v in vals.add], dtype=dtype, device=device) if vals.add else None,
        layout=layout,
        missing=list(vals.missing),
        coverage=dict(vals.coverage),
        target=target,
        metric=metric,
        lut_version=lut_version,
        calibration=calibration,
    )


class CellLatencyLoss(nn.Module):
    """Expected latency of a cell space (AutoRTNet's latency term), differentiable in the edge weights
    ``p`` [types, edges, ops] and the depth weights ``beta`` (one [N_h] vector per hyper-cell).

    Weights are probabilities (softmax, Gumbel-softmax samples, one-hot); ``from_logits=True`` applies
    the softmax here. Returns ``weight * latency`` (``weight`` is AutoRTNet's lambda; 1 by default).
    """

    gate_index: torch.Tensor  # a buffer (register_buffer), typed for the checker

    def __init__(self, costs: CellCosts, *, from_logits: bool = False, weight: float = 1.0) -> None:
        super().__init__()
        bad = torch.isnan(costs.C).any() or torch.isnan(costs.pre).any() or math.isnan(costs.fixed)
        bad = bool(bad) or any(bool(torch.isnan(d).any()) for d in costs.depth)
        if bad:
            raise ValueError(f"the costs of {costs.space} have unmeasured (NaN) entries, e.g. {costs.missing[:3]}; "
                             "measure them first")
        self.costs = costs
        self.from_logits = from_logits
        self.weight = float(weight)
        sizes = list(costs.layout.hyper_sizes)
        offsets = [sum(sizes[:h]) for h in range(len(sizes))]
        # where each cell's gate sits in cat(P(depth_0 >= k), P(depth_1 >= k), ..., [1])
        gate_index = [offsets[h] + k - 1 if h >= 0 else sum(sizes)
                      for h, k in zip(costs.hyper.tolist(), costs.position.tolist())]
        self.register_buffer("gate_index", torch.tensor(gate_index, dtype=torch.long, device=costs.C.device))

    def _check_depths(self, beta: Optional[Sequence[torch.Tensor]]) -> List[torch.Tensor]:
        sizes = list(self.costs.layout.hyper_sizes)
        if not sizes:
            return []
        if beta is None or len(beta) != len(sizes):
            raise ValueError(f"{self.costs.space} needs depth weights for {len(sizes)} hyper-cells of {sizes} cells")
        for h, (b, n) in enumerate(zip(beta, sizes)):
            if tuple(b.shape) != (n,):
                raise ValueError(f"depth weights of hyper-cell {h} have shape {tuple(b.shape)}, expected ({n},)")
        return [torch.softmax(b, -1) for b in beta] if self.from_logits else list(beta)

    def latency(self, p: torch.Tensor, beta: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        if self.from_logits:
            p = torch.softmax(p, dim=-1)
        betas = self._check_depths(beta)
        cc = self.costs.cell_costs(p)
        one = torch.ones(1, dtype=p.dtype, device=p.device)
        tails = [torch.flip(torch.cumsum(torch.flip(b, (0,)), 0), (0,)) for b in betas]  # P(depth >= k)
        gates = torch.cat(tails + [one])[self.gate_index]
        total = (gates * cc).sum() + self.costs.fixed
        for b, extra in zip(betas, self.costs.depth):
            total = total + (b * extra.to(b.dtype)).sum()
        return total

    def forward(self, p: torch.Tensor, beta: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        return self.weight * self.latency(p, beta)


def predict_cell_latency(
    costs: CellCosts, arch: CellArch, calibration: Any = "auto", server: Optional[str] = None
) -> LatencyPrediction:
    """The LUT's latency of a discrete cell architecture: fixed + kept cells (preprocessing and chosen
    edges) + the ops of the chosen depths. ``layer_ms``/``choices`` list the kept cells and their costs.
    From predicted costs, ``predicted_ms``/``predicted_ops`` say how much of it is predicted and
    ``lo_ms``..``hi_ms`` bound it: the same sum at the intervals' ends (lutcore.netsum's ``linear`` rule)."""
    lay = costs.layout
    if arch.space.name != lay.space or arch.space.resolution_str != lay.resolution:
        raise ClientError(f"{arch.name} is of {arch.space.name}@{arch.space.resolution_str}, "
                          f"the costs of {lay.space}@{lay.resolution}")
    op_idx = [[lay.ops.index(o) for o in ops] for ops in arch.choices]
    chosen = {i: op_idx[c.type_index] for i, c in enumerate(lay.cells)
              if c.hyper < 0 or c.position <= arch.depths[c.hyper]}
    empty = {i: lay.empty_nodes(ops) for i, ops in chosen.items()}
    used: List[str] = [k for _, k in lay.fixed]
    for i, ops in chosen.items():
        c = lay.cells[i]
        edges = [k for e, j in enumerate(ops) for k in [c.keys[e][j]] if k is not None]
        # the glue as the network runs it: the concat, and one add per edge beyond the first of each node
        adds = len(edges) - c.nodes + empty[i]
        used += list(c.pre) + edges + [c.concat] + [c.add] * adds
    used += [k for h, d in enumerate(arch.depths) for k in lay.depth[h][d - 1]]
    cells, lut = _arch_sum(costs, arch, chosen, empty)
    if math.isnan(lut):
        miss = sorted({k for k in used if k in set(costs.missing)})
        raise MissingEntriesError(miss, lay.space, lay.resolution, str(costs.target), server)
    cal = parse_calibration(costs.calibration if calibration == "auto" else calibration, lay.space, lay.resolution)
    n_ops = len(arch.all_ops())  # as the LUT-truth validation counts them
    ends = [_arch_sum(b, arch, chosen, empty)[1] if b is not None else lut for b in (costs.lo, costs.hi)]
    lo, hi = sorted(cal.apply(v, n_ops) if cal else v for v in ends)  # a < 0 swaps them
    pred = [costs.predictions[k][0] for k in used if k in costs.predictions]
    return LatencyPrediction(
        ms=cal.apply(lut, n_ops) if cal else lut, lut_ms=lut, fixed_ms=costs.fixed, layer_ms=cells,
        choices=[lay.cells[i].name for i in chosen], n_ops=n_ops, calibration=cal,
        predicted_ms=float(sum(pred)), predicted_ops=len(pred), lo_ms=lo, hi_ms=hi,
    )


def _arch_sum(costs: Union[CellCosts, CellBound], arch: CellArch, chosen: Dict[int, List[int]],
              empty: Dict[int, int]) -> Tuple[List[float], float]:
    """Per kept cell ``i`` (preprocessing, the ops ``chosen[i]`` of its edges, and one add back for each of
    its ``empty[i]`` nodes without input) and in all (with the fixed ops and the chosen depths)."""
    C = costs.C.detach().to("cpu", torch.float64)
    pre = costs.pre.detach().to("cpu", torch.float64)
    add = [0.0] * len(pre) if costs.add is None else costs.add.detach().to("cpu", torch.float64).tolist()
    cells = [float(pre[i]) + sum(float(C[i, e, j]) for e, j in enumerate(ops)) + add[i] * empty[i]
             for i, ops in chosen.items()]
    depth = [float(costs.depth[h][d - 1]) for h, d in enumerate(arch.depths)]
    return cells, costs.fixed + sum(cells) + sum(depth)
