"""Cell-based search spaces (DARTS, AutoRTNet): DAGs of cells whose edges are the searchable units."""

from __future__ import annotations

from typing import Dict

from lutcore.spaces.cells.arch import (
    CellArch,
    arch_space_name,
    cell_arch_names,
    get_cell_arch,
    make_cell_arch,
    paper_cell_figures,
    random_cell_choices,
)
from lutcore.spaces.cells.definition import CellSpaceDef
from lutcore.spaces.cells.layout import CellKeys, CellLayout, CellValues
from lutcore.spaces.cells.recipes import cell_data
from lutcore.spaces.cells.space import AggEdge, CellSlot, CellSpace, EdgeSlot


def cell_space_defs() -> Dict[str, CellSpaceDef]:
    """The built-in cell spaces, by name, from ``data/cells.json``."""
    out = {}
    for name, d in cell_data()["spaces"].items():
        out[name] = CellSpaceDef(
            name=name,
            kind=d["kind"],
            input=(d["input"][0], d["input"][1], d["input"][2]),
            ops=tuple(d["ops"]),
            nodes=d["intermediate_nodes"],
            source=d,
            description=d.get("description", ""),
        )
    return out


__all__ = [
    "AggEdge",
    "CellArch",
    "CellKeys",
    "CellLayout",
    "CellSlot",
    "CellSpace",
    "CellSpaceDef",
    "CellValues",
    "EdgeSlot",
    "arch_space_name",
    "cell_arch_names",
    "cell_space_defs",
    "get_cell_arch",
    "make_cell_arch",
    "paper_cell_figures",
    "random_cell_choices",
]
