"""A cell-based search space placed at a resolution: cells of edges, each edge a row of op specs.

The searchable unit is an edge (its input shape, stride and channels); every cell of one cell
type shares the type's choice per edge (DARTS: ``normal`` and ``reduce``; AutoRTNet: a reduction
and a normal type per hyper-cell). A hyper-cell also chooses its depth: cells after the chosen one
are pruned, and ops that exist only at a given depth (the next reduction cell's first input
preprocessing) are listed under ``depth_ops``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from lutcore.errors import SpaceError
from lutcore.ops import OpSpec
from lutcore.spaces.cells.layout import CellLayout
from lutcore.spaces.space import FixedOp, Resolution

if TYPE_CHECKING:
    from lutcore.spaces.cells.definition import CellSpaceDef

Shape = Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class EdgeSlot:
    """One searchable edge: node ``src`` -> node ``dst`` (0 and 1 are the cell's inputs) and its op row."""

    index: int
    src: int
    dst: int
    c: int
    h: int
    w: int
    stride: int
    row: Tuple[Optional[OpSpec], ...]  # one per op of the space; None for the zero op


@dataclasses.dataclass(frozen=True)
class CellSlot:
    """One cell of the network. ``pre0`` is None where the first input depends on a hyper-cell's depth.

    ``node_add`` and ``concat`` are its glue: a node with m inputs runs m - 1 adds, the cell one concat.
    """

    name: str
    type: str
    reduction: bool
    hyper: Optional[int]
    position: int  # 1-based within its hyper-cell (the reduction cell is 1); index in the network otherwise
    c: int
    pre0: Optional[FixedOp]
    pre1: FixedOp
    edges: Tuple[EdgeSlot, ...]
    out: Shape
    node_add: FixedOp
    concat: FixedOp

    @property
    def nodes(self) -> int:
        return len({e.dst for e in self.edges})


@dataclasses.dataclass(frozen=True)
class AggEdge:
    """A fixed edge of AutoRTNet's aggregation cell (searched without a latency term)."""

    src: str
    dst: str
    op: FixedOp


@dataclasses.dataclass(frozen=True)
class CellSpace:
    """Everything the agent, server and client need about a cell space at one resolution."""

    definition: CellSpaceDef
    resolution: Resolution
    edges: Tuple[Tuple[int, int], ...]
    cell_types: Tuple[str, ...]
    stem: Tuple[FixedOp, ...]
    stem_states: Tuple[int, ...]  # the stem ops whose outputs are the first cell's two inputs
    cells: Tuple[CellSlot, ...]
    hyper_sizes: Tuple[int, ...] = ()
    depth_ops: Tuple[Tuple[Tuple[FixedOp, ...], ...], ...] = ()  # [hyper][depth - 1] -> ops present
    aggregation: Tuple[AggEdge, ...] = ()
    agg_outputs: Tuple[str, ...] = ()
    head: Tuple[FixedOp, ...] = ()
    decoder: Optional[FixedOp] = None
    low_state: int = 0  # the stem op whose output is the decoder's low-level input
    agg_glue: Tuple[FixedOp, ...] = ()  # the aggregation's node sums, upsamplings (agg.NODE.up) and concat

    is_cell_space = True

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def ops(self) -> List[str]:
        return list(self.definition.ops)

    @property
    def candidates(self) -> List[str]:
        return self.ops

    @property
    def resolution_str(self) -> str:
        return f"{self.resolution[0]}x{self.resolution[1]}"

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def grid(self) -> Any:
        raise SpaceError(
            self.name,
            "a cell space has no layers x candidates grid; use its cell layout "
            "(lutcore: space.layout(); search_client: LUTClient.cell_costs)",
        )

    @property
    def fixed(self) -> List[FixedOp]:
        """Ops every architecture runs: stem, aggregation (edges, then its glue), head, decoder."""
        out = list(self.stem) + [a.op for a in self.aggregation] + list(self.agg_glue) + list(self.head)
        return out + ([self.decoder] if self.decoder else [])

    def agg_upsample(self, node: str) -> Optional[FixedOp]:
        """The upsampling that brings aggregation output ``node`` to the first output's size, if it needs one."""
        return next((f for f in self.agg_glue if f.name == f"agg.{node}.up"), None)

    def cells_of_type(self, cell_type: str) -> List[CellSlot]:
        return [c for c in self.cells if c.type == cell_type]

    def type_index(self, cell_type: str) -> int:
        try:
            return self.cell_types.index(cell_type)
        except ValueError:
            raise SpaceError("cell type", f"{cell_type!r} is not one of {', '.join(self.cell_types)}") from None

    def unique_ops(self) -> Dict[str, OpSpec]:
        """Every op to measure (edges, preprocessing, depth-dependent and fixed ops), identities left out."""
        out: Dict[str, OpSpec] = {}

        def add(spec: Optional[OpSpec]) -> None:
            if spec is not None and not spec.is_identity:
                out.setdefault(spec.key, spec)

        for f in self.stem:
            add(f.spec)
        for cell in self.cells:
            add(cell.pre0.spec if cell.pre0 else None)
            add(cell.pre1.spec)
            add(cell.node_add.spec)
            add(cell.concat.spec)
            for e in cell.edges:
                for spec in e.row:
                    add(spec)
        for per_depth in self.depth_ops:
            for ops in per_depth:
                for f in ops:
                    add(f.spec)
        for f in self.fixed[len(self.stem):]:
            add(f.spec)
        return out

    def layout(self) -> CellLayout:
        """Which key sits at which (cell, edge, op), per-cell and depth-dependent ops: see CellLayout."""
        return CellLayout.of(self)

    def macs_range(self, cell: CellSlot) -> Tuple[int, int]:
        """The cheapest and dearest op's MACs over the cell's edges (for display)."""
        vals = [s.macs() for e in cell.edges for s in e.row if s is not None]
        return (min(vals), max(vals)) if vals else (0, 0)

    def to_dict(self) -> Dict[str, Any]:
        def cell_dict(c: CellSlot) -> Dict[str, Any]:
            return {
                "name": c.name, "type": c.type, "reduction": c.reduction, "hyper": c.hyper,
                "position": c.position, "channels": c.c, "out": list(c.out),
                "pre0": None if c.pre0 is None else c.pre0.spec.key, "pre1": c.pre1.spec.key,
                "node_add": c.node_add.spec.key, "concat": c.concat.spec.key,
                "edges": [
                    {"index": e.index, "src": e.src, "dst": e.dst, "input": [e.c, e.h, e.w], "stride": e.stride,
                     "ops": [None if s is None else {"op": n, "key": s.key, "macs": s.macs(), "params": s.params()}
                             for n, s in zip(self.ops, e.row)]}
                    for e in c.edges
                ],
            }

        return {
            "name": self.name,
            "kind": "cells",
            "resolution": self.resolution_str,
            "ops": self.ops,
            "cell_types": list(self.cell_types),
            "edges": [list(e) for e in self.edges],
            "hyper_sizes": list(self.hyper_sizes),
            "cells": [cell_dict(c) for c in self.cells],
            "depth_ops": [[[f.spec.key for f in ops] for ops in per] for per in self.depth_ops],
            "fixed": [{"name": f.name, "key": f.spec.key, "digest": f.spec.digest, "macs": f.spec.macs(),
                       "params": f.spec.params()} for f in self.fixed],
            "unique_ops": len(self.unique_ops()),
            "definition": self.definition.to_dict(),
        }

