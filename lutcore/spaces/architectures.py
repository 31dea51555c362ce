"""Architectures: one candidate per layer of a space. Named built-ins and seeded random ones.

Names: the six published SqueezeNAS networks (``squeezenas-lat-small``, ...), and
``SPACE:random:SEED`` for a uniformly random valid architecture of SPACE.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from lutcore.errors import SpaceError, UnknownNameError
from lutcore.ops import OpSpec
from lutcore.spaces.datafiles import DATA
from lutcore.spaces.registry import get_cell_space, get_space, space_names
from lutcore.spaces.space import Resolution, Space

if TYPE_CHECKING:
    from lutcore.spaces.cells import CellArch

_published: Optional[Dict[str, Any]] = None


def _data() -> Dict[str, Any]:
    global _published
    if _published is None:
        _published = json.loads((DATA / "architectures.json").read_text())
    return _published


def published_names() -> List[str]:
    return list(_data()["networks"])


def paper_figures(name: str) -> Dict[str, float]:
    """The SqueezeNAS paper's Table 1 row for a published network (mIOU, Xavier ms, GMACs, params)."""
    return dict(_data()["paper_table1"][name])


@dataclasses.dataclass(frozen=True)
class Arch:
    """A discrete architecture: the space at a resolution and one candidate name per layer."""

    name: str
    space: Space
    choices: Tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.choices) != self.space.num_layers:
            raise SpaceError(
                "choices", f"{len(self.choices)} given, {self.space.name} has {self.space.num_layers} layers"
            )
        for i, c in enumerate(self.choices):
            cell = self.space.cell(i, c)
            if not isinstance(cell, OpSpec):
                raise SpaceError(f"choices[{i}]", f"{c} is not valid at layer {i}: {cell.reason}")

    @property
    def indices(self) -> List[int]:
        cat = self.space.definition.catalogue
        return [cat.index(c) for c in self.choices]

    def layer_ops(self) -> List[OpSpec]:
        return [self.space.cell(i, c) for i, c in enumerate(self.choices)]  # type: ignore[misc]

    def all_ops(self) -> List[Tuple[str, OpSpec]]:
        """Every op as deployed, in order, with identities dropped."""
        ops = [(f.name, f.spec) for f in self.space.stem]
        ops += [(f"layer.{i}", s) for i, s in enumerate(self.layer_ops()) if not s.is_identity]
        ops += [(f.name, f.spec) for f in self.space.head]
        if self.space.decoder:
            ops.append((self.space.decoder.name, self.space.decoder.spec))
        return ops

    def macs(self) -> int:
        return sum(s.macs() for _, s in self.all_ops())

    def params(self) -> int:
        return sum(s.params() for _, s in self.all_ops())

    def to_dict(self) -> Dict[str, Any]:
        return {
            "arch": self.name,
            "space": self.space.name,
            "resolution": self.space.resolution_str,
            "choices": list(self.choices),
            "gmacs": self.macs() / 1e9,
            "params_m": self.params() / 1e6,
            "ops": [
                {"name": n, "key": s.key, "digest": s.digest, "macs": s.macs(), "params": s.params()}
                for n, s in self.all_ops()
            ],
        }


def random_arch(space: Space, seed: int) -> Tuple[str, ...]:
    """Uniform over the valid candidates of each layer; stable across Python versions."""
    rng = random.Random(seed)
    names = space.candidates
    return tuple(rng.choice([n for n, c in zip(names, row) if isinstance(c, OpSpec)]) for row in space.grid)



AnyArch = Union[Arch, "CellArch"]  # a chain network's choices, or a cell network's genotype

def arch_names() -> List[str]:
    """Named architectures: SqueezeNAS's published six and the cell spaces' (darts-v2-*)."""
    from lutcore.spaces.cells import cell_arch_names

    return published_names() + cell_arch_names()


def get_arch(name: str, resolution: Union[str, Resolution, None] = None) -> AnyArch:
    """A named architecture: published (``squeezenas-lat-small``, ``darts-v2-cifar10``) or ``SPACE:random:SEED``.

    Architectures of cell spaces are ``lutcore.spaces.cells.CellArch`` (same ``all_ops``/``macs``/``to_dict``).
    """
    from lutcore.spaces.cells import CellSpace, arch_space_name, get_cell_arch

    cell_space = arch_space_name(name)
    if cell_space is not None:
        return get_cell_arch(name, get_cell_space(cell_space, resolution))
    nets = _data()["networks"]
    if name in nets:
        space_name = "squeezenas-" + name.rsplit("-", 1)[1]
        space = get_space(space_name, resolution)
        if isinstance(space, CellSpace):
            raise SpaceError("arch", f"{name!r} names a chain network but {space_name} is a cell space")
        return Arch(name, space, tuple(nets[name]))
    parts = name.split(":")
    if len(parts) == 3 and parts[1] == "random":
        try:
            seed = int(parts[2])
        except ValueError:
            raise SpaceError("arch", f"{name!r}: the seed must be an integer") from None
        space = get_space(parts[0], resolution)
        if isinstance(space, CellSpace):
            return get_cell_arch(name, space)
        return Arch(name, space, random_arch(space, seed))
    known = arch_names() + [f"{s}:random:SEED" for s in space_names()]
    raise UnknownNameError("architecture", name, known)



def get_chain_arch(name: str, resolution: Union[str, Resolution, None] = None) -> Arch:
    """``get_arch`` for a caller that needs a chain network's choices (``layer_ops``, ``indices``)."""
    arch = get_arch(name, resolution)
    if not isinstance(arch, Arch):
        raise SpaceError("arch", f"{name!r} is a cell network (a genotype of edges), not a chain of layers")
    return arch

def make_arch(space: Space, choices: Sequence[str], name: str = "custom") -> Arch:
    return Arch(name, space, tuple(choices))


def parse_arch_list(spec: str, space: str, seed: int = 0, limit: Optional[int] = None) -> List[str]:
    """``published,random:20,squeezenas-small:random:3`` -> architecture names of ``space``.

    ``published`` keeps the published networks of that space; ``random:N`` adds N random
    architectures seeded ``seed, seed+1, ...``; anything else is taken as a name. More than
    ``limit`` architectures is an error (checked before any list is built).
    """
    names: List[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if part == "published":
            from lutcore.spaces.cells import arch_space_name, cell_arch_names

            names += [n for n in published_names() if "squeezenas-" + n.rsplit("-", 1)[1] == space]
            names += [n for n in cell_arch_names() if arch_space_name(n) == space]
        elif part.startswith("random:"):
            try:
                n = int(part.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"--archs item {part!r}: random:N needs an integer N") from None
            if n < 0:
                raise ValueError(f"--archs item {part!r}: N must not be negative")
            if limit is not None and len(names) + n > limit:  # refuse before building a huge list
                raise ValueError(f"--archs item {part!r}: at most {limit} architectures in all")
            names += [f"{space}:random:{seed + i}" for i in range(n)]
        else:
            names.append(part)
        if limit is not None and len(names) > limit:
            raise ValueError(f"--archs {spec[:60]!r}: at most {limit} architectures in all")
    if not names:
        raise ValueError(f"--archs {spec!r} names no architecture of {space}")
    return names
