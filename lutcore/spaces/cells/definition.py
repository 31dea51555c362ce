"""A cell space's definition as ``data/cells.json`` holds it; ``at()`` places it at a resolution."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Tuple

from lutcore.spaces.cells.build import build_cell_space
from lutcore.spaces.cells.space import CellSpace
from lutcore.spaces.space import Resolution, parse_resolution


@dataclasses.dataclass(frozen=True)
class CellSpaceDef:
    """A built-in cell space as ``data/cells.json`` holds it; ``at()`` places it at a resolution."""

    name: str
    kind: str
    input: Tuple[int, int, int]
    ops: Tuple[str, ...]
    nodes: int
    source: Mapping[str, Any] = dataclasses.field(compare=False, repr=False)
    batch: int = 1
    description: str = ""

    @property
    def default_resolution(self) -> Resolution:
        return self.input[1], self.input[2]

    def at(self, resolution: Any = None) -> CellSpace:
        res = parse_resolution(resolution) or self.default_resolution
        return build_cell_space(self, res)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, **self.source}
