"""A chain search space: its validated definition, and the definition placed at a resolution,
the (layer x candidate) grid of op specs. ``lutcore.spaces.definition`` parses what users write."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from lutcore.catalogues import Catalogue, Invalid, LayerSlot
from lutcore.errors import LutError, SpaceError
from lutcore.ops import OpSpec
from lutcore.spaces.placement import Cell, decoder_spec, fixed_spec

Resolution = Tuple[int, int]


def parse_resolution(text: Union[str, Resolution, None]) -> Optional[Resolution]:
    """``"256x512"`` -> (256, 512) as (height, width)."""
    if text is None or isinstance(text, tuple):
        return text
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise SpaceError("resolution", f"{text!r} is not HxW, e.g. 256x512") from None
    if h <= 0 or w <= 0:
        raise SpaceError("resolution", f"{text!r} must be positive")
    return h, w


@dataclasses.dataclass(frozen=True)
class LayerDef:
    c_in: int
    c_out: int
    stride: int = 1
    act: str = "relu"
    fields: Tuple[Tuple[str, Any], ...] = ()
    skippable: bool = True


@dataclasses.dataclass(frozen=True)
class SpaceDef:
    """A validated, resolution-free definition. ``at()`` places it at a resolution."""

    name: str
    input: Tuple[int, int, int]
    catalogue: Catalogue
    stem: Tuple[Mapping[str, Any], ...]
    layers: Tuple[LayerDef, ...]
    head: Tuple[Mapping[str, Any], ...] = ()
    decoder: Optional[Mapping[str, Any]] = None
    batch: int = 1
    description: str = ""
    source: Optional[Mapping[str, Any]] = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def default_resolution(self) -> Resolution:
        return self.input[1], self.input[2]

    @property
    def total_stride(self) -> int:
        s = 1
        for op in self.stem:
            s *= op.get("stride", 1)
        for layer in self.layers:
            s *= layer.stride
        return s

    @property
    def needs_divisible_sizes(self) -> bool:
        """A decoder aligns deep and low-level features, and SqueezeNAS's reshaping skip (factorized
        reduce) needs even sizes; other chain spaces take any size, every stride rounding up as padded
        convolutions do (OFA samples 128-224 in steps of 4)."""
        return self.decoder is not None or self.catalogue.skip_policy == "squeezenas"

    def at(self, resolution: Union[str, Resolution, None] = None) -> Space:
        res = parse_resolution(resolution) or self.default_resolution
        return Space.build(self, res)

    def to_dict(self) -> Dict[str, Any]:
        """The definition as a user would write it (round-trips through ``space_from_dict``)."""
        if self.source is not None:
            return json.loads(json.dumps(self.source))
        raise LutError(f"space {self.name} was not built from a mapping")


@dataclasses.dataclass(frozen=True)
class FixedOp:
    """An op every architecture of the space runs (stem, head, decoder)."""

    name: str
    spec: OpSpec


@dataclasses.dataclass(frozen=True)
class Space:
    """Everything the agent, server and client need to know about a space at one resolution.

    ``grid[i][j]`` is the op spec of candidate j at layer i, or an ``Invalid`` with the reason.
    """

    definition: SpaceDef
    resolution: Resolution
    slots: Tuple[LayerSlot, ...]
    grid: Tuple[Tuple[Cell, ...], ...]
    stem: Tuple[FixedOp, ...]
    head: Tuple[FixedOp, ...]
    decoder: Optional[FixedOp]

    @classmethod
    def build(cls, sdef: SpaceDef, res: Resolution) -> Space:
        h, w = res
        step = sdef.total_stride
        if sdef.needs_divisible_sizes and (h % step or w % step):
            raise SpaceError("resolution", f"{h}x{w} must be divisible by {step}, the total stride of {sdef.name}")
        b = sdef.batch
        c = sdef.input[0]
        stem: List[FixedOp] = []
        for i, op in enumerate(sdef.stem):
            spec = fixed_spec(op, c, h, w, b, f"stem[{i}]")
            stem.append(FixedOp(f"stem.{i}", spec))
            c, h, w = spec.c_out, *spec.out_hw
        slots: List[LayerSlot] = []
        grid: List[Tuple[Cell, ...]] = []
        outputs: List[Tuple[int, int, int]] = []
        for i, layer in enumerate(sdef.layers):
            slot = LayerSlot(i, c, h, w, layer.c_out, layer.stride, layer.act, b, layer.fields, layer.skippable)
            cells = tuple(sdef.catalogue.place(slot))
            ref = next((x for x in cells if isinstance(x, OpSpec)), None)
            if ref is None:
                reason = cells[0].reason if isinstance(cells[0], Invalid) else ""
                raise SpaceError(f"layers[{i}]", f"no candidate is valid here: {reason}")
            slots.append(slot)
            grid.append(cells)
            c, h, w = layer.c_out, *ref.out_hw
            outputs.append((c, h, w))
        head: List[FixedOp] = []
        for i, op in enumerate(sdef.head):
            spec = fixed_spec(op, c, h, w, b, f"head[{i}]")
            head.append(FixedOp(f"head.{i}", spec))
            if len(spec.out_shape) == 4:
                c, h, w = spec.c_out, *spec.out_hw
        dec = None
        if sdef.decoder is not None:
            low = outputs[sdef.decoder["low_level_layer"]]
            dec = FixedOp("decoder", decoder_spec(sdef.decoder, (c, h, w), low, b))
        return cls(sdef, res, tuple(slots), tuple(grid), tuple(stem), tuple(head), dec)

    # -- the grid ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def candidates(self) -> List[str]:
        return self.definition.catalogue.names

    @property
    def num_layers(self) -> int:
        return len(self.grid)

    @property
    def fixed(self) -> List[FixedOp]:
        return list(self.stem) + list(self.head) + ([self.decoder] if self.decoder else [])

    def mask(self) -> List[List[bool]]:
        """True where a candidate cannot sit at a layer."""
        return [[isinstance(c, Invalid) for c in row] for row in self.grid]

    def cell(self, layer: int, candidate: str) -> Cell:
        return self.grid[layer][self.definition.catalogue.index(candidate)]

    def unique_ops(self) -> Dict[str, OpSpec]:
        """Every op to measure (grid and fixed), by key, identities left out (they cost nothing)."""
        out: Dict[str, OpSpec] = {}
        for row in self.grid:
            for c in row:
                if isinstance(c, OpSpec) and not c.is_identity:
                    out.setdefault(c.key, c)
        for f in self.fixed:
            out.setdefault(f.spec.key, f.spec)
        return out

    def key_matrix(self) -> List[List[Optional[str]]]:
        return [[c.key if isinstance(c, OpSpec) else None for c in row] for row in self.grid]

    def mac_matrix(self) -> List[List[Optional[int]]]:
        return [[c.macs() if isinstance(c, OpSpec) else None for c in row] for row in self.grid]

    def param_matrix(self) -> List[List[Optional[int]]]:
        return [[c.params() if isinstance(c, OpSpec) else None for c in row] for row in self.grid]

    def fixed_macs(self) -> int:
        return sum(f.spec.macs() for f in self.fixed)

    def fixed_params(self) -> int:
        return sum(f.spec.params() for f in self.fixed)

    @property
    def resolution_str(self) -> str:
        return f"{self.resolution[0]}x{self.resolution[1]}"

    def to_dict(self) -> Dict[str, Any]:
        """JSON view: the definition, the grid with keys/MACs/params, fixed ops, unique-op count."""
        layers = []
        for slot, row in zip(self.slots, self.grid):
            cells = []
            for name, cell in zip(self.candidates, row):
                if isinstance(cell, Invalid):
                    cells.append({"candidate": name, "valid": False, "reason": cell.reason})
                else:
                    cells.append(
                        {
                            "candidate": name,
                            "valid": True,
                            "key": cell.key,
                            "digest": cell.digest,
                            "macs": cell.macs(),
                            "params": cell.params(),
                        }
                    )
            layers.append(
                {
                    "index": slot.index,
                    "input": [slot.c_in, slot.h, slot.w],
                    "c_out": slot.c_out,
                    "stride": slot.stride,
                    "act": slot.act,
                    "cells": cells,
                }
            )
        return {
            "name": self.name,
            "resolution": self.resolution_str,
            "candidates": self.candidates,
            "layers": layers,
            "fixed": [
                {
                    "name": f.name,
                    "key": f.spec.key,
                    "digest": f.spec.digest,
                    "macs": f.spec.macs(),
                    "params": f.spec.params(),
                }
                for f in self.fixed
            ],
            "unique_ops": len(self.unique_ops()),
            "definition": self.definition.to_dict(),
        }
