"""A discrete cell architecture: one op per edge of each cell type, and a depth per hyper-cell.

Named built-ins: ``darts-v2-cifar10``, ``darts-v2-imagenet`` (the DARTS_V2 genotype); random ones
``SPACE:random:SEED``. As deployed: zero edges are removed, cells after a hyper-cell's depth are
pruned, identity skips cost nothing (but an identity input of a node still costs its add); the
cell's input preprocessing, its node sums and its concat always run (as in DARTS). A node whose
edges are all zero holds zeros (a constant of the network: no op, no add).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from lutcore.errors import SpaceError, UnknownNameError
from lutcore.ops import OpSpec
from lutcore.spaces.cells.recipes import cell_data, is_zero
from lutcore.spaces.cells.space import CellSlot, CellSpace
from lutcore.spaces.space import FixedOp


@dataclasses.dataclass(frozen=True)
class CellArch:
    name: str
    space: CellSpace
    choices: Tuple[Tuple[str, ...], ...]  # [cell type][edge] -> op name
    depths: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        sp = self.space
        if len(self.choices) != len(sp.cell_types):
            raise SpaceError("choices", f"{len(self.choices)} cell types given, {sp.name} has {len(sp.cell_types)}")
        for t, ops in zip(sp.cell_types, self.choices):
            if len(ops) != sp.num_edges:
                raise SpaceError(f"choices[{t}]", f"{len(ops)} edges given, a cell has {sp.num_edges}")
            for e, op in enumerate(ops):
                if op not in sp.ops:
                    raise SpaceError(f"choices[{t}][{e}]", f"{op!r} is not an op of {sp.name}: {', '.join(sp.ops)}")
            if all(is_zero(op) for op in ops):  # one node without input holds zeros; a whole cell of them is void
                raise SpaceError(f"choices[{t}]", "every edge is zero: the cell would output only zeros")
        if len(self.depths) != len(sp.hyper_sizes):
            raise SpaceError("depths", f"{len(self.depths)} given, {sp.name} has {len(sp.hyper_sizes)} hyper-cells")
        for i, (d, n) in enumerate(zip(self.depths, sp.hyper_sizes)):
            if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= n:
                raise SpaceError(f"depths[{i}]", f"must be an integer in 1..{n}, not {d!r}")

    # -- what is deployed --------------------------------------------------------------
    def ops_of(self, cell: CellSlot) -> Tuple[str, ...]:
        return self.choices[self.space.type_index(cell.type)]

    def kept(self, cell: CellSlot) -> bool:
        return cell.hyper is None or cell.position <= self.depths[cell.hyper]

    def kept_cells(self) -> List[Tuple[CellSlot, FixedOp]]:
        """The cells that remain, each with the first-input preprocessing it runs."""
        out = []
        for c in self.space.cells:
            if self.kept(c):
                pre0 = c.pre0 if c.pre0 is not None else self.depth_op(c)
                out.append((c, pre0))
        return out

    def depth_op(self, cell: CellSlot) -> FixedOp:
        h = cell.hyper - 1  # type: ignore[operator]
        return self.space.depth_ops[h][self.depths[h] - 1][0]

    def cell_edge_ops(self, cell: CellSlot) -> List[Tuple[int, str, OpSpec]]:
        """(edge index, op name, spec) of the cell's non-zero edges."""
        names = self.ops_of(cell)
        out = []
        for e, op in zip(cell.edges, names):
            spec = e.row[self.space.ops.index(op)]
            if spec is not None:
                out.append((e.index, op, spec))
        return out

    def all_ops(self) -> List[Tuple[str, OpSpec]]:
        """Every op as deployed, in order, with zero edges, pruned cells and identities dropped; each kept
        cell's node sums (m - 1 adds for a node of m non-zero inputs) and concat included."""
        sp = self.space
        ops = [(f.name, f.spec) for f in sp.stem]
        for cell, pre0 in self.kept_cells():
            ops += [(pre0.name, pre0.spec), (cell.pre1.name, cell.pre1.spec)]
            edge_ops = self.cell_edge_ops(cell)
            ops += [(f"{cell.name}.e{i}.{op}", s) for i, op, s in edge_ops if not s.is_identity]
            ops += [(f"{cell.name}.n{dst}.add", cell.node_add.spec)
                    for dst in sorted({e.dst for e in cell.edges})
                    for _ in range(sum(cell.edges[i].dst == dst for i, _, _ in edge_ops) - 1)]
            ops.append((cell.concat.name, cell.concat.spec))
        ops += [(f.name, f.spec) for f in sp.fixed[len(sp.stem):]]
        return ops

    def macs(self) -> int:
        return sum(s.macs() for _, s in self.all_ops())

    def params(self) -> int:
        return sum(s.params() for _, s in self.all_ops())

    def to_dict(self) -> Dict[str, Any]:
        sp = self.space
        return {
            "arch": self.name,
            "space": sp.name,
            "resolution": sp.resolution_str,
            "choices": {t: list(c) for t, c in zip(sp.cell_types, self.choices)},
            "depths": list(self.depths),
            "cells_kept": [c.name for c, _ in self.kept_cells()],
            "gmacs": self.macs() / 1e9,
            "params_m": self.params() / 1e6,
            "ops": [
                {"name": n, "key": s.key, "digest": s.digest, "macs": s.macs(), "params": s.params()}
                for n, s in self.all_ops()
            ],
        }


def from_genotype(space: CellSpace, genotype: Mapping[str, Any]) -> Tuple[Tuple[str, ...], ...]:
    """DARTS genotype ``{normal: [[op, input], ...], reduce: ...}`` (2 entries per node) -> ops per edge."""
    zero = next(op for op in space.ops if is_zero(op))
    out = []
    for t in space.cell_types:
        ops = [zero] * space.num_edges
        entries = genotype[t]
        for i, (op, src) in enumerate(entries):
            e = space.edges.index((src, 2 + i // 2))
            if ops[e] != zero:
                raise SpaceError(f"genotype.{t}[{i}]", f"edge {src}->{2 + i // 2} is chosen twice")
            ops[e] = op
        out.append(tuple(ops))
    return tuple(out)


def random_cell_choices(space: CellSpace, seed: int) -> Tuple[Tuple[Tuple[str, ...], ...], Tuple[int, ...]]:
    """DARTS-style spaces (no hyper-cells): each node keeps 2 distinct inputs with a non-zero op, as a
    derived genotype does. With hyper-cells (AutoRTNet): any op per edge, redrawn while a node has no
    non-zero input, and a uniform depth per hyper-cell. Stable across Python versions."""
    rng = random.Random(seed)
    live = [op for op in space.ops if not is_zero(op)]
    zero = next(op for op in space.ops if is_zero(op))
    choices = []
    for _ in space.cell_types:
        ops = [zero] * space.num_edges
        for dst in sorted({d for _, d in space.edges}):
            idx = [e for e, (_, d) in enumerate(space.edges) if d == dst]
            if not space.hyper_sizes:
                for e in rng.sample(idx, 2):
                    ops[e] = rng.choice(live)
                continue
            while all(is_zero(ops[e]) for e in idx):
                for e in idx:
                    ops[e] = rng.choice(space.ops)
        choices.append(tuple(ops))
    depths = tuple(rng.randint(1, n) for n in space.hyper_sizes)
    return tuple(choices), depths


def cell_arch_names() -> List[str]:
    return list(cell_data()["architectures"])


def paper_cell_figures(name: str) -> Dict[str, float]:
    return dict(cell_data()["architectures"][name]["paper"])


def get_cell_arch(name: str, space: CellSpace) -> CellArch:
    """A named cell architecture of ``space`` (already placed at the wanted resolution)."""
    data = cell_data()
    if name in data["architectures"]:
        geno = data["genotypes"][data["architectures"][name]["genotype"]]
        return CellArch(name, space, from_genotype(space, geno))
    parts = name.split(":")
    if len(parts) == 3 and parts[1] == "random":
        try:
            seed = int(parts[2])
        except ValueError:
            raise SpaceError("arch", f"{name!r}: the seed must be an integer") from None
        choices, depths = random_cell_choices(space, seed)
        return CellArch(name, space, choices, depths)
    raise UnknownNameError("architecture", name, cell_arch_names())


def arch_space_name(name: str) -> Optional[str]:
    """The space of a named cell architecture, None if ``name`` is not one."""
    entry = cell_data()["architectures"].get(name)
    return None if entry is None else entry["space"]


def make_cell_arch(
    space: CellSpace, choices: Mapping[str, Sequence[str]], depths: Sequence[int] = (), name: str = "custom"
) -> CellArch:
    """From ``{cell type: [op per edge]}`` and a depth per hyper-cell."""
    missing = [t for t in space.cell_types if t not in choices]
    if missing:
        raise SpaceError("choices", f"no ops for cell type(s) {', '.join(missing)}")
    return CellArch(name, space, tuple(tuple(choices[t]) for t in space.cell_types), tuple(depths))
