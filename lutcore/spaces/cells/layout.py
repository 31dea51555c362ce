"""Which LUT key sits at which (cell, edge, op): the torch-free structure of a cell space's costs.

A client turns it into tensors from per-key values (search_client.cells); a server could serve it
as JSON (``to_dict``) next to the values, as it serves the chain spaces' cost matrix.

The latency of an architecture is

    fixed + sum over kept cells i of (pre_i + sum_e C_i[e, op of e in i's type]) + sum_h depth_h[d_h]

where a cell of hyper-cell h at position k is kept when d_h >= k, and ``depth_h[d]`` holds the ops
that exist only at depth d (the next reduction cell's first-input preprocessing).

A cell's glue is in the same formula: a node of m non-zero inputs runs m - 1 adds, so every non-zero
op's ``C`` entry carries one add (``CellKeys.add``) and ``pre_i`` carries the concat minus one add per
node (it may be below the preprocessing alone; the sum over a cell is not). A node whose edges are all
zero runs no add (the deployed network holds zeros there), where that count gives it -1: each such node
gives one add back, ``add_i`` (``CellValues.add``) times ``empty_nodes`` -- under edge weights p, the sum
over nodes of the product of their edges' zero-op weights, which is exact for one-hot weights.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from lutcore.errors import SpaceError
from lutcore.netsum import sum_or_none

if TYPE_CHECKING:
    from lutcore.spaces.cells.space import CellSpace


@dataclasses.dataclass(frozen=True)
class CellKeys:
    """One cell's keys: its type, where it sits, its preprocessing, [edge][op] keys (None: zero op), and
    its glue (the key of one node-sum add, the concat's key, the number of intermediate nodes)."""

    name: str
    type_index: int
    hyper: int  # -1 outside hyper-cells (always kept)
    position: int
    pre: Tuple[str, ...]
    keys: Tuple[Tuple[Optional[str], ...], ...]
    add: str
    concat: str
    nodes: int


@dataclasses.dataclass(frozen=True)
class CellValues:
    """A layout filled with values: ``C`` [cells][edges][ops] (op + one add), ``pre`` [cells] (preprocessing
    + concat - nodes * add), ``depth`` [hyper][depth - 1], ``fixed`` per fixed op, ``add`` [cells] (what each
    node without input gives back); None where an entry (or a sum over one) is unmeasured."""

    C: List[List[List[Optional[float]]]]
    pre: List[Optional[float]]
    depth: List[List[Optional[float]]]
    fixed: List[Optional[float]]
    fixed_ms: Optional[float]
    missing: List[str]
    coverage: Dict[str, Any]
    add: List[Optional[float]] = dataclasses.field(default_factory=list)  # [cells] one add: an empty node's due


@dataclasses.dataclass(frozen=True)
class CellLayout:
    space: str
    resolution: str
    ops: Tuple[str, ...]
    cell_types: Tuple[str, ...]
    edges: Tuple[Tuple[int, int], ...]
    cells: Tuple[CellKeys, ...]
    hyper_sizes: Tuple[int, ...]
    depth: Tuple[Tuple[Tuple[str, ...], ...], ...]  # [hyper][depth - 1] -> keys
    fixed: Tuple[Tuple[str, str], ...]  # (name, key)
    identities: Tuple[str, ...]  # keys that cost exactly 0 (deployed as nothing)

    @classmethod
    def of(cls, sp: CellSpace) -> CellLayout:
        idents: Set[str] = set()

        def key(spec: Any) -> Optional[str]:
            if spec is None:
                return None
            if spec.is_identity:
                idents.add(spec.key)
            return spec.key

        cells = []
        for c in sp.cells:
            pre = tuple(f.spec.key for f in (c.pre0, c.pre1) if f is not None)
            keys = tuple(tuple(key(s) for s in e.row) for e in c.edges)
            hyper = -1 if c.hyper is None else c.hyper
            cells.append(CellKeys(c.name, sp.type_index(c.type), hyper, c.position, pre, keys,
                                  c.node_add.spec.key, c.concat.spec.key, c.nodes))
        depth = tuple(tuple(tuple(f.spec.key for f in ops) for ops in per) for per in sp.depth_ops)
        fixed = tuple((f.name, f.spec.key) for f in sp.fixed)
        return cls(sp.name, sp.resolution_str, tuple(sp.ops), sp.cell_types, sp.edges, tuple(cells),
                   sp.hyper_sizes, depth, fixed, tuple(sorted(idents)))

    @functools.cached_property
    def zero_op(self) -> Optional[int]:
        """The index of the zero op (no key on any edge of any cell), None if the space has none; kept, as the
        latency loss reads it on every step."""
        return next((j for j in range(len(self.ops))
                     if all(row[j] is None for c in self.cells for row in c.keys)), None)

    @functools.cached_property
    def node_edges(self) -> List[List[int]]:
        """Per intermediate node, in order, the indices of the edges into it (read-only)."""
        nodes: Dict[int, List[int]] = {}
        for e, (_, dst) in enumerate(self.edges):
            nodes.setdefault(dst, []).append(e)
        return [nodes[d] for d in sorted(nodes)]

    def empty_nodes(self, ops: Sequence[int]) -> int:
        """How many nodes get no input from one op index per edge (each gives its cell one add back)."""
        z = self.zero_op
        return sum(all(ops[e] == z for e in es) for es in self.node_edges) if z is not None else 0

    def all_keys(self) -> List[str]:
        """Every key the costs need, identities included, each once, in a stable order."""
        out: Dict[str, None] = {}
        for _, k in self.fixed:
            out.setdefault(k, None)
        for c in self.cells:
            for k in (*c.pre, c.add, c.concat):
                out.setdefault(k, None)
            for row in c.keys:
                for cell_key in row:
                    if cell_key is not None:
                        out.setdefault(cell_key, None)
        for per in self.depth:
            for ks in per:
                for k in ks:
                    out.setdefault(k, None)
        return list(out)

    def fill(self, values: Mapping[str, Optional[float]]) -> CellValues:
        """The costs as nested lists from per-key values (None or absent: unmeasured; zero ops and
        identities cost 0). Torch-free, so the server answers with the same tensors a client builds."""
        idents = set(self.identities)
        absent: Dict[str, None] = {}

        def val(key: Optional[str]) -> Optional[float]:
            if key is None or key in idents:
                return 0.0
            v = values.get(key)
            if v is None:
                absent.setdefault(key, None)
                return None
            return float(v)

        def total(keys: Any) -> Optional[float]:
            return sum_or_none(val(k) for k in keys)

        def edge(key: Optional[str], add: str) -> Optional[float]:
            return 0.0 if key is None else total((key, add))

        def glue(c: CellKeys) -> Optional[float]:
            add = val(c.add)
            return None if add is None else sum_or_none((total(c.pre), val(c.concat), -c.nodes * add))

        C = [[[edge(k, c.add) for k in row] for row in c.keys] for c in self.cells]
        pre = [glue(c) for c in self.cells]
        depth = [[total(ks) for ks in per] for per in self.depth]
        fixed = [val(k) for _, k in self.fixed]
        n = len([k for k in self.all_keys() if k not in idents])
        miss = list(absent)
        cov = {"measured": n - len(miss), "total": n, "fraction": (n - len(miss)) / n if n else 1.0}
        add = [val(c.add) for c in self.cells]
        return CellValues(C, pre, depth, fixed, total(k for _, k in self.fixed), miss, cov, add)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CellLayout:
        """The inverse of ``to_dict``: a layout a server sent (compare it with the local one for version skew)."""
        try:
            types = tuple(d["cell_types"])
            cells = tuple(
                CellKeys(c["name"], types.index(c["type"]), int(c["hyper"]), int(c["position"]), tuple(c["pre"]),
                         tuple(tuple(r) for r in c["keys"]), str(c["add"]), str(c["concat"]), int(c["nodes"]))
                for c in d["cells"]
            )
            return cls(
                str(d["space"]), str(d["resolution"]), tuple(d["ops"]), types, tuple(tuple(e) for e in d["edges"]),
                cells, tuple(d["hyper_sizes"]), tuple(tuple(tuple(ks) for ks in per) for per in d["depth"]),
                tuple((f["name"], f["key"]) for f in d["fixed"]), tuple(d["identities"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SpaceError("layout", f"not a cell layout document ({e!r})") from None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "space": self.space,
            "resolution": self.resolution,
            "ops": list(self.ops),
            "cell_types": list(self.cell_types),
            "edges": [list(e) for e in self.edges],
            "cells": [
                {"name": c.name, "type": self.cell_types[c.type_index], "hyper": c.hyper, "position": c.position,
                 "pre": list(c.pre), "keys": [list(r) for r in c.keys], "add": c.add, "concat": c.concat,
                 "nodes": c.nodes}
                for c in self.cells
            ],
            "hyper_sizes": list(self.hyper_sizes),
            "depth": [[list(ks) for ks in per] for per in self.depth],
            "fixed": [{"name": n, "key": k} for n, k in self.fixed],
            "identities": list(self.identities),
        }
