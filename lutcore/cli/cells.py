"""``lut space show`` / ``lut arch show`` for cell spaces: cells, edges x ops, depth options."""

from __future__ import annotations

from typing import Any, List

from lutcore.cli.table import render


def show_cell_space(sp: Any, keys: bool) -> str:
    """One table of cells, then an edge x op table (MMACs or keys) for the first cell of each type."""
    out: List[str] = []
    hyper = f", hyper-cells of {list(sp.hyper_sizes)} cells (depth 1..N each)" if sp.hyper_sizes else ""
    out.append(f"{sp.name} at {sp.resolution_str}: {len(sp.cells)} cells, {sp.num_edges} edges x {len(sp.ops)} ops"
               f", cell types {', '.join(sp.cell_types)}{hyper}")
    rows = []
    for c in sp.cells:
        e0 = c.edges[0]
        lo, hi = sp.macs_range(c)
        pre0 = c.pre0.spec.key if c.pre0 else "depends on the previous hyper-cell's depth"
        rows.append([c.name, c.type, f"{e0.c}x{e0.h}x{e0.w}", "x".join(map(str, c.out)),
                     f"{lo / 1e6:.2f}-{hi / 1e6:.2f}", pre0])
    out.append(render(["cell", "type", "edge input", "out", "edge MMACs", "pre0"], rows))
    for t in sp.cell_types:
        cell = sp.cells_of_type(t)[0]
        out.append(f"\n{t} (first: {cell.name}): " + ("op keys" if keys else "MMACs") + " per (edge, op); - = zero op")
        erows = []
        for e in cell.edges:
            cells = ["-" if s is None else (s.key if keys else round(s.macs() / 1e6, 3)) for s in e.row]
            erows.append([e.index, f"{e.src}->{e.dst}", e.stride] + cells)
        out.append(render(["edge", "from->to", "s"] + sp.ops, erows))
    if sp.hyper_sizes:
        out.append("\nops present only at a depth (the next reduction cell's first-input preprocessing):")
        drows = [[f"h{h}", d + 1, ", ".join(f.spec.key for f in ops) or "-"]
                 for h, per in enumerate(sp.depth_ops) for d, ops in enumerate(per)]
        out.append(render(["hyper", "depth", "ops"], drows))
    out.append("\nfixed ops:")
    frows = [[f.name, f.spec.key, round(f.spec.macs() / 1e6, 2)] for f in sp.fixed]
    out.append(render(["name", "key", "MMACs"], frows))
    out.append(f"\nunique ops to measure: {len(sp.unique_ops())}")
    return "\n".join(out)


def cell_arch_summary(arch: Any) -> str:
    sp = arch.space
    lines = [f"{arch.name}: {sp.name} at {sp.resolution_str}"]
    for t, ops in zip(sp.cell_types, arch.choices):
        lines.append(f"  {t}: " + ", ".join(f"{a}->{b}:{op}" for (a, b), op in zip(sp.edges, ops)
                                           if op not in ("none", "zero")))
    if arch.depths:
        lines.append(f"  depths: {list(arch.depths)} of {list(sp.hyper_sizes)}")
    return "\n".join(lines)
