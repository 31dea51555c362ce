"""The network of a discrete cell architecture as deployed: zero edges removed, pruned cells removed."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn

from lutcore.ops import OpSpec
from lutcore.spaces.cells import CellArch
from lutcore.torch.modules import build_op


def _add(xs: List[torch.Tensor]) -> torch.Tensor:
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return y


class Cell(nn.Module):
    """Preprocess both inputs, sum each intermediate node's kept edges, concatenate the nodes."""

    def __init__(self, pre0: OpSpec, pre1: OpSpec, nodes: int, edges: List[Tuple[int, int, OpSpec]],
                 node_shape: Tuple[int, ...] = ()) -> None:
        super().__init__()
        self.pre0 = build_op(pre0)
        self.pre1 = build_op(pre1)
        self.nodes = nodes
        self.wiring = [(src, dst) for src, dst, _ in edges]
        self.ops = nn.ModuleList(build_op(s) for _, _, s in edges)
        # a node whose edges are all zero holds zeros: a constant, so it runs nothing (no op, no add)
        self.empty = [dst for dst in range(2, 2 + nodes) if all(d != dst for _, d in self.wiring)]
        if self.empty:
            self.register_buffer("zeros", torch.zeros(node_shape))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for dst in range(2, 2 + self.nodes):
            if dst in self.empty:
                states.append(self.zeros)
                continue
            states.append(_add([op(states[src]) for (src, d), op in zip(self.wiring, self.ops) if d == dst]))
        return torch.cat(states[2:], dim=1)


class CellNetwork(nn.Module):
    """stem -> kept cells (each fed by the previous two kept outputs) -> classifier, or -> aggregation
    cell over the hyper-cells' outputs -> decoder (AutoRTNet)."""

    def __init__(self, arch: CellArch) -> None:
        super().__init__()
        sp = arch.space
        self.stem = nn.ModuleList(build_op(f.spec) for f in sp.stem)
        self.stem_states = sp.stem_states
        self.cells = nn.ModuleList()
        self.hyper_last: Dict[int, int] = {}  # cell index -> hyper-cell whose output it is
        for i, (cell, pre0) in enumerate(arch.kept_cells()):
            edges = [(cell.edges[j].src, cell.edges[j].dst, spec) for j, _, spec in arch.cell_edge_ops(cell)]
            self.cells.append(Cell(pre0.spec, cell.pre1.spec, sp.definition.nodes, edges, cell.node_add.spec.in_shape))
            if cell.hyper is not None:
                self.hyper_last = {k: v for k, v in self.hyper_last.items() if v != cell.hyper}
                self.hyper_last[i] = cell.hyper
        self.head = nn.Sequential(*[build_op(f.spec) for f in sp.head])
        self.agg_wiring = [(a.src, a.dst) for a in sp.aggregation]
        self.agg = nn.ModuleList(build_op(a.op.spec) for a in sp.aggregation)
        self.agg_outputs = sp.agg_outputs
        self.agg_up = nn.ModuleDict({o: build_op(f.spec) for o in sp.agg_outputs
                                     for f in [sp.agg_upsample(o)] if f is not None})
        self.decoder = build_op(sp.decoder.spec) if sp.decoder else None
        self.low_state = sp.low_state
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem_out = []
        for m in self.stem:
            x = m(x)
            stem_out.append(x)
        chain = [stem_out[i] for i in self.stem_states]
        nodes: Dict[str, torch.Tensor] = {}
        for i, cell in enumerate(self.cells):
            chain.append(cell(chain[-2], chain[-1]))
            if i in self.hyper_last:
                nodes[f"h{self.hyper_last[i]}"] = chain[-1]
        if self.decoder is None:
            return self.head(chain[-1])
        for (src, dst), op in zip(self.agg_wiring, self.agg):
            y = op(nodes[src])  # an edge reads a node only after all edges into it (data order)
            nodes[dst] = nodes[dst] + y if dst in nodes else y  # m - 1 adds for m edges, as costed
        outs = [self.agg_up[o](nodes[o]) if o in self.agg_up else nodes[o] for o in self.agg_outputs]
        x = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        return self.decoder(x, stem_out[self.low_state])
