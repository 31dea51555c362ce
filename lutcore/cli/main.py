"""``lut``: entry point, plugin discovery, and the torch-free core commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, List, Optional, Union

from lutcore.cli.table import render
from lutcore.errors import LutError

EXIT_USAGE = 2
EXIT_ERROR = 1


def _plugins() -> List[Callable[[argparse._SubParsersAction], None]]:
    """Subcommand registrars from installed applications (group ``lut.commands``)."""
    from importlib import metadata

    eps: Any = metadata.entry_points()  # a dict of groups before Python 3.10, selectable after
    group = eps.select(group="lut.commands") if hasattr(eps, "select") else eps.get("lut.commands", [])
    out = []
    for ep in sorted(group, key=lambda e: e.name):
        try:
            out.append(ep.load())
        except ImportError as e:  # an application installed without its extra: say so, keep the rest
            print(f"lut: commands from {ep.name} unavailable ({e}); install its extra", file=sys.stderr)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lut", description="Latency lookup tables for hardware-aware NAS: spaces, ops, the LUT server."
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("spaces", help="list built-in search spaces and architectures")
    s.add_argument("--json", action="store_true", help="print the spaces and architectures as one JSON object")
    s.set_defaults(func=cmd_spaces)

    sp = sub.add_parser("space", help="inspect a search space")
    spsub = sp.add_subparsers(dest="space_cmd", metavar="ACTION")
    spsub.required = True
    show = spsub.add_parser("show", help="layers x candidates with keys and MACs")
    show.add_argument("name", help="a built-in space name or a YAML/JSON space file")
    show.add_argument("--resolution", "-r", help="HxW, e.g. 256x512 (default: the space's own)")
    show.add_argument("--json", action="store_true",
                      help="print the space (layers, candidates, keys, MACs) as JSON instead of a table")
    show.add_argument("--keys", action="store_true", help="print the op key of every cell instead of MACs")
    show.set_defaults(func=cmd_space_show)

    ap = sub.add_parser("arch", help="inspect an architecture")
    apsub = ap.add_subparsers(dest="arch_cmd", metavar="ACTION")
    apsub.required = True
    ashow = apsub.add_parser("show", help="per-layer ops, MACs and params of an architecture")
    ashow.add_argument("name", help="e.g. squeezenas-lat-small, darts-v2-cifar10 or autortnet:random:7")
    ashow.add_argument("--resolution", "-r", help="HxW, e.g. 256x512 (default: the space's own)")
    ashow.add_argument("--json", action="store_true", help="print per-op keys, gmacs and params_m as JSON")
    ashow.set_defaults(func=cmd_arch_show)

    for register in _plugins():
        register(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LutError as e:
        print(f"lut: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("lut: interrupted", file=sys.stderr)
        return 130


def cmd_spaces(args: argparse.Namespace) -> int:
    from lutcore.spaces import arch_names, get_space, space_names
    from lutcore.spaces.cells import CellSpace

    spaces = []
    for name in space_names():
        sp = get_space(name)
        cells = isinstance(sp, CellSpace)
        spaces.append(
            {
                "name": name,
                "resolution": sp.resolution_str,
                "kind": "cells" if cells else "chain",
                "layers": len(sp.cells) if isinstance(sp, CellSpace) else sp.num_layers,  # cells of a cell space
                "edges_per_cell": sp.num_edges if isinstance(sp, CellSpace) else None,
                "candidates": len(sp.candidates),
                "unique_ops": len(sp.unique_ops()),
                "description": sp.definition.description,
            }
        )
    archs = arch_names()
    if args.json:
        print(json.dumps({"spaces": spaces, "architectures": archs, "random": "SPACE:random:SEED"}, indent=2))
        return 0
    cols = ["name", "kind", "resolution", "layers", "candidates", "unique_ops", "description"]
    print(render(cols, [[s[c] for c in cols] for s in spaces]))
    print("\narchitectures: " + ", ".join(archs))
    print("random architectures: SPACE:random:SEED, e.g. squeezenas-small:random:7, darts-cifar10:random:7")
    return 0


def cmd_space_show(args: argparse.Namespace) -> int:
    from lutcore.spaces import get_space

    sp = get_space(args.name, args.resolution)
    if args.json:
        print(json.dumps(sp.to_dict(), indent=2))
        return 0
    from lutcore.ops import OpSpec
    from lutcore.spaces.cells import CellSpace

    if isinstance(sp, CellSpace):
        from lutcore.cli.cells import show_cell_space

        print(show_cell_space(sp, args.keys))
        return 0
    print(f"{sp.name} at {sp.resolution_str}: {sp.num_layers} layers x {len(sp.candidates)} candidates")
    rows = []
    for slot, row in zip(sp.slots, sp.grid):
        cells: List[Union[str, float]] = []
        for cell in row:
            if not isinstance(cell, OpSpec):
                cells.append("invalid")
            elif args.keys:
                cells.append(cell.key)
            else:
                cells.append(round(cell.macs() / 1e6, 2))
        rows.append([slot.index, f"{slot.c_in}x{slot.h}x{slot.w}", slot.c_out, slot.stride] + cells)
    print(("op keys" if args.keys else "MMACs") + " per (layer, candidate):")
    print(render(["layer", "input", "c_out", "s"] + sp.candidates, rows))
    print("\nfixed ops:")
    print(render(["name", "key", "MMACs"], [[f.name, f.spec.key, round(f.spec.macs() / 1e6, 2)] for f in sp.fixed]))
    print(f"\nunique ops to measure: {len(sp.unique_ops())}")
    return 0


def cmd_arch_show(args: argparse.Namespace) -> int:
    from lutcore.spaces import get_arch

    arch = get_arch(args.name, args.resolution)
    d = arch.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    if getattr(arch.space, "is_cell_space", False):
        from lutcore.cli.cells import cell_arch_summary

        print(cell_arch_summary(arch))
    else:
        print(f"{arch.name}: {arch.space.name} at {arch.space.resolution_str}")
    print(
        render(
            ["op", "key", "MMACs", "params"],
            [[o["name"], o["key"], round(o["macs"] / 1e6, 2), o["params"]] for o in d["ops"]],
        )
    )
    print(f"\ntotal: {d['gmacs']:.3f} GMACs, {d['params_m']:.3f} M params")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
