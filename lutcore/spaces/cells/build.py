"""Placing a cell space definition at a resolution: DARTS networks and AutoRTNet's hyper-cells.

Cells follow DARTS's wiring: a cell's two inputs are the outputs of the previous two (kept) cells,
preprocessed to the cell's width (ReLU-1x1-BN, or factorized reduce when the older input is at twice
the size); edges from the inputs of a reduction cell have stride 2; a node sums its inputs, and a cell outputs
the concatenation of its intermediate nodes (both glue ops have LUT keys of their own, as have
AutoRTNet's aggregation sums, upsamplings and concat).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from lutcore.errors import SpaceError, SpecError
from lutcore.ops import Conv, PoolFC, conv_out
from lutcore.ops.cellops import Concat, NodeAdd, Upsample
from lutcore.spaces.cells.recipes import place_op, preprocess_spec
from lutcore.spaces.cells.space import AggEdge, CellSlot, CellSpace, EdgeSlot, Shape
from lutcore.spaces.placement import decoder_spec, fixed_spec
from lutcore.spaces.space import FixedOp, Resolution

if TYPE_CHECKING:
    from lutcore.spaces.cells.definition import CellSpaceDef


def dag_edges(nodes: int) -> Tuple[Tuple[int, int], ...]:
    """Every predecessor -> every intermediate node, in DARTS's order (node 2 from 0, 1; node 3 from 0, 1, 2; ...)."""
    return tuple((src, 2 + j) for j in range(nodes) for src in range(2 + j))


def place_cell(
    sdef: CellSpaceDef,
    name: str,
    cell_type: str,
    s0: Optional[Shape],
    s1: Shape,
    c: int,
    reduction: bool,
    hyper: Optional[int],
    position: int,
) -> CellSlot:
    b = sdef.batch
    _, h1, w1 = s1
    ho, wo = (conv_out(h1, 3, 2), conv_out(w1, 3, 2)) if reduction else (h1, w1)
    if reduction and (h1 % 2 or w1 % 2):
        raise SpaceError("resolution", f"{name}: reduces an odd {h1}x{w1} input; pick a resolution divisible further")
    pre0 = None if s0 is None else FixedOp(f"{name}.pre0", preprocess_spec(s0, (h1, w1), c, b, f"{name}.pre0"))
    pre1 = FixedOp(f"{name}.pre1", preprocess_spec(s1, (h1, w1), c, b, f"{name}.pre1"))
    edges: List[EdgeSlot] = []
    for i, (src, dst) in enumerate(dag_edges(sdef.nodes)):
        stride = 2 if reduction and src < 2 else 1
        h, w = (h1, w1) if src < 2 else (ho, wo)
        where = f"{name}.edge[{i}]"
        row = tuple(place_op(op, c, h, w, c, stride, b, where) for op in sdef.ops)
        edges.append(EdgeSlot(i, src, dst, c, h, w, stride, row))
    glue = (FixedOp(f"{name}.add", NodeAdd(c, ho, wo, c, batch=b)),
            FixedOp(f"{name}.concat", Concat(sdef.nodes * c, ho, wo, sdef.nodes * c, batch=b, parts=sdef.nodes)))
    return CellSlot(name, cell_type, reduction, hyper, position, c, pre0, pre1, tuple(edges), (sdef.nodes * c, ho, wo),
                    *glue)


def _check_divisible(sdef: CellSpaceDef, res: Resolution, step: int) -> None:
    h, w = res
    if h % step or w % step:
        raise SpaceError("resolution", f"{h}x{w} must be divisible by {step}, the total stride of {sdef.name}")


def build_darts(sdef: CellSpaceDef, res: Resolution) -> CellSpace:
    d, b = sdef.source, sdef.batch
    h, w = res
    C, L = d["init_channels"], d["cells"]
    cin = sdef.input[0]
    if d["stem"] == "cifar":  # conv 3x3 -> BN, its output is both inputs of the first cell
        _check_divisible(sdef, res, 4)
        cs = d["stem_multiplier"] * C
        stem: Tuple[FixedOp, ...] = (FixedOp("stem.0", Conv(cin, h, w, cs, kernel=3, act="none", batch=b)),)
        states: Tuple[int, ...] = (0, 0)
    else:  # ImageNet: stem0 = two stride-2 convs, stem1 = ReLU -> stride-2 conv -> BN
        _check_divisible(sdef, res, 32)
        c0 = Conv(cin, h, w, C // 2, kernel=3, stride=2, act="relu", batch=b)
        # "relu": stem1 opens with an in-place ReLU, which rectifies stem0's output, the first cell's s0, too
        c1 = Conv(C // 2, *c0.out_hw, C, kernel=3, stride=2, act="relu", batch=b)
        c2 = Conv(C, *c1.out_hw, C, kernel=3, stride=2, act="none", batch=b)
        stem = (FixedOp("stem0.0", c0), FixedOp("stem0.1", c1), FixedOp("stem1", c2))
        states = (1, 2)
    chain: List[Shape] = [(stem[i].spec.c_out, *stem[i].spec.out_hw) for i in states]
    cells: List[CellSlot] = []
    c = C
    for i in range(L):
        red = i in (L // 3, 2 * L // 3)
        c = c * 2 if red else c
        cell = place_cell(sdef, f"cell.{i}", "reduce" if red else "normal", chain[-2], chain[-1], c, red, None, i)
        cells.append(cell)
        chain.append(cell.out)
    ch, hh, ww = chain[-1]
    head = (FixedOp("classifier", PoolFC(ch, hh, ww, d["classes"], batch=b)),)
    return CellSpace(sdef, res, dag_edges(sdef.nodes), ("normal", "reduce"), stem, states, tuple(cells), head=head)


def build_autortnet(sdef: CellSpaceDef, res: Resolution) -> CellSpace:
    d, b = sdef.source, sdef.batch
    _check_divisible(sdef, res, 32)
    h, w = res
    c = sdef.input[0]
    stem: List[FixedOp] = []
    for i, op in enumerate(d["stem"]):
        spec = fixed_spec(op, c, h, w, b, f"stem[{i}]")
        stem.append(FixedOp(f"stem.{i}", spec))
        c, h, w = spec.c_out, *spec.out_hw
    shape = [(f.spec.c_out, *f.spec.out_hw) for f in stem]
    sizes = tuple(d["cells_per_hyper_cell"])
    cells: List[CellSlot] = []
    depth_ops: List[Tuple[Tuple[FixedOp, ...], ...]] = []
    outs: List[Shape] = [shape[0], shape[1]]  # the outputs before each hyper-cell's: stem.0, stem.1, h0, h1, ...
    types: List[str] = []
    for hc, (n, cw) in enumerate(zip(sizes, d["cell_channels"])):
        rt, nt = f"h{hc}.reduce", f"h{hc}.normal"
        types += [rt, nt]
        s0 = outs[-2] if hc == 0 else None  # later: depends on the previous hyper-cell's depth
        red = place_cell(sdef, f"h{hc}.cell1", rt, s0, outs[-1], cw, True, hc, 1)
        cells.append(red)
        if hc > 0:  # the previous hyper-cell's depth picks this cell's first input
            opts = []
            for dep in range(1, sizes[hc - 1] + 1):
                src = outs[-1] if dep >= 2 else outs[-2]
                spec = preprocess_spec(src, red.pre1.spec.in_shape[2:], cw, b, f"{red.name}.pre0")
                opts.append((FixedOp(f"{red.name}.pre0", spec),))
            depth_ops.append(tuple(opts))
        for k in range(2, n + 1):
            s0 = outs[-1] if k == 2 else red.out
            cells.append(place_cell(sdef, f"h{hc}.cell{k}", nt, s0, red.out, cw, False, hc, k))
        outs.append(red.out)
    depth_ops.append(tuple(() for _ in range(sizes[-1])))
    agg, agg_outs, glue, deep = _aggregation(sdef, outs[2:], b)
    low = shape[1]
    dec = FixedOp("decoder", decoder_spec(d["head"], deep, low, b))
    return CellSpace(
        sdef, res, dag_edges(sdef.nodes), tuple(types), tuple(stem), (0, 1), tuple(cells), sizes,
        tuple(depth_ops), agg, agg_outs, (), dec, 1, glue,
    )


def _aggregation(
    sdef: CellSpaceDef, hyper_outs: List[Shape], b: int
) -> Tuple[Tuple[AggEdge, ...], Tuple[str, ...], Tuple[FixedOp, ...], Shape]:
    """AutoRTNet's aggregation cell with its fixed ops; returns the edges, output nodes, glue and output shape."""
    a = sdef.source["aggregation"]
    shapes: Dict[str, Shape] = {f"h{i}": s for i, s in enumerate(hyper_outs)}
    edges: List[AggEdge] = []
    for i, e in enumerate(a["edges"]):
        where = f"aggregation.edges[{i}]"
        if e["src"] not in shapes:
            raise SpaceError(f"{where}.src", f"{e['src']!r} is not defined before this edge")
        c, h, w = shapes[e["src"]]
        spec = place_op(e["op"], c, h, w, a["channels"], e["stride"], b, where)
        if spec is None:
            raise SpaceError(f"{where}.op", "the aggregation cell has no zero op")
        out = (spec.c_out, *spec.out_hw)
        if shapes.setdefault(e["dst"], out) != out:
            raise SpaceError(where, f"gives {out} at {e['dst']}, which other edges give {shapes[e['dst']]}")
        edges.append(AggEdge(e["src"], e["dst"], FixedOp(f"agg.{i}.{e['op']}", spec)))
    outs = tuple(a["outputs"])
    _, h0, w0 = shapes[outs[0]]
    return tuple(edges), outs, _aggregation_glue(edges, outs, shapes, b), (sum(shapes[o][0] for o in outs), h0, w0)


def _aggregation_glue(edges: List[AggEdge], outs: Tuple[str, ...], shapes: Dict[str, Shape], b: int
                      ) -> Tuple[FixedOp, ...]:
    """What the aggregation runs outside its edges' ops: m - 1 adds for a node of m edges, a bilinear
    upsampling of each output coarser than the first, and the concat of the outputs."""
    glue: List[FixedOp] = []
    for dst in dict.fromkeys(e.dst for e in edges):
        c, h, w = shapes[dst]
        glue += [FixedOp(f"agg.{dst}.add", NodeAdd(c, h, w, c, batch=b))] * (sum(e.dst == dst for e in edges) - 1)
    c0, h0, w0 = shapes[outs[0]]
    for o in outs:
        c, h, w = shapes[o]
        where = f"{o} and {outs[0]}"
        if c != c0:
            raise SpaceError("aggregation.outputs", f"{where}: {c} and {c0} channels, the concat needs equal parts")
        if (h, w) == (h0, w0):
            continue
        f = h0 // h
        if (h * f, w * f) != (h0, w0):
            raise SpaceError("aggregation.outputs", f"{where}: {h}x{w} is no integer factor below {h0}x{w0}")
        try:
            glue.append(FixedOp(f"agg.{o}.up", Upsample(c, h, w, c, batch=b, factor=f)))
        except SpecError as e:
            raise SpaceError("aggregation.outputs", f"{where}: {e}") from None
    if len(outs) > 1:
        n = len(outs)
        glue.append(FixedOp("agg.concat", Concat(n * c0, h0, w0, n * c0, batch=b, parts=n)))
    return tuple(glue)


_BUILDERS = {"darts": build_darts, "autortnet": build_autortnet}


def build_cell_space(sdef: CellSpaceDef, res: Resolution) -> CellSpace:
    return _BUILDERS[sdef.kind](sdef, res)
