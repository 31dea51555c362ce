"""Candidate blocks and the catalogues that group them.

A candidate is a recipe, not an op: placed at a layer slot (shapes, stride, the layer's
activation) it becomes an op spec, or an ``Invalid`` with the reason it cannot sit there.
Adding a catalogue is one decorated function (``@register_catalogue``) or a YAML entry
(``catalogue_from_dict``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Tuple, Union

from lutcore.errors import SpaceError, SpecError, UnknownNameError
from lutcore.ops import InvertedResidual, OpSpec, Skip

SKIP_POLICIES = ("squeezenas", "fbnet", "identity")


@dataclasses.dataclass(frozen=True)
class LayerSlot:
    """Where a candidate is placed: one searchable layer of a space at a resolution."""

    index: int
    c_in: int
    h: int
    w: int
    c_out: int
    stride: int = 1
    act: str = "relu"
    batch: int = 1


@dataclasses.dataclass(frozen=True)
class Invalid:
    """A (layer, candidate) pair that cannot exist, and why."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A named block recipe: ``family`` is ``ir`` or ``skip``; ``params`` are the spec fields.

    ``act`` is left out of ``params`` to take the layer's activation (TF-NAS: ReLU early, Swish late).
    """

    name: str
    family: str
    params: Tuple[Tuple[str, Any], ...] = ()

    def place(self, slot: LayerSlot, skip_policy: str) -> Union[OpSpec, Invalid]:
        base = dict(c_in=slot.c_in, h=slot.h, w=slot.w, c_out=slot.c_out, stride=slot.stride, batch=slot.batch)
        try:
            if self.family == "skip":
                return _place_skip(base, skip_policy)
            p = dict(self.params)
            p.setdefault("act", slot.act)
            return InvertedResidual(**base, **p)
        except SpecError as e:
            return Invalid(str(e))


def _place_skip(base: Dict[str, Any], policy: str) -> Union[OpSpec, Invalid]:
    same = base["stride"] == 1 and base["c_in"] == base["c_out"]
    if same:
        return Skip(**base, mode="identity")
    if policy == "identity":
        return Invalid("skip needs stride 1 and c_in == c_out in this space")
    if policy == "fbnet":
        return Skip(**base, mode="conv_bn_relu")
    if base["stride"] == 2:
        return Skip(**base, mode="factorized_reduce")
    return Skip(**base, mode="relu_conv_bn")


def ir(name: str, kernel: int, expansion: float, dilation: int = 1, groups: int = 1, **extra: Any) -> Candidate:
    """Shorthand for an inverted-residual candidate."""
    params = dict(kernel=kernel, expansion=expansion, dilation=dilation, groups=groups, **extra)
    return Candidate(name, "ir", tuple(sorted(params.items())))


def skip(name: str = "skip") -> Candidate:
    return Candidate(name, "skip")


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """An ordered candidate list (the columns of C) and how its skip adapts to shape changes."""

    name: str
    candidates: Tuple[Candidate, ...]
    skip_policy: str = "squeezenas"
    description: str = ""

    def __post_init__(self) -> None:
        if self.skip_policy not in SKIP_POLICIES:
            raise SpaceError(f"catalogue {self.name}.skip_policy", f"must be one of {', '.join(SKIP_POLICIES)}")
        names = [c.name for c in self.candidates]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SpaceError(f"catalogue {self.name}.candidates", f"duplicate names {sorted(dup)}")

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.candidates]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownNameError(f"candidate of catalogue {self.name!r}", name, self.names) from None

    def place(self, slot: LayerSlot) -> List[Union[OpSpec, Invalid]]:
        return [c.place(slot, self.skip_policy) for c in self.candidates]


_CATALOGUES: Dict[str, Callable[[], Catalogue]] = {}
_BUILT: Dict[str, Catalogue] = {}


def register_catalogue(name: str) -> Callable[[Callable[[], Catalogue]], Callable[[], Catalogue]]:
    """Decorator: register a function that returns a Catalogue under ``name``."""

    def deco(fn: Callable[[], Catalogue]) -> Callable[[], Catalogue]:
        if name in _CATALOGUES:
            raise ValueError(f"catalogue {name!r} registered twice")
        _CATALOGUES[name] = fn
        return fn

    return deco


def catalogue_names() -> List[str]:
    return sorted(_CATALOGUES)


def get_catalogue(name: str) -> Catalogue:
    if name not in _BUILT:
        if name not in _CATALOGUES:
            raise UnknownNameError("catalogue", name, list(_CATALOGUES))
        _BUILT[name] = _CATALOGUES[name]()
    return _BUILT[name]


_IR_FIELDS = {f.name for f in dataclasses.fields(InvertedResidual)} - {f.name for f in dataclasses.fields(OpSpec)}


def catalogue_from_dict(data: Mapping[str, Any], path: str = "catalogue") -> Catalogue:
    """A catalogue from a YAML/JSON mapping: ``{name, skip_policy, candidates: [{name, family, ...}]}``."""
    if not isinstance(data, Mapping):
        raise SpaceError(path, "must be a mapping")
    name = data.get("name", "custom")
    cands = data.get("candidates")
    if not isinstance(cands, list) or not cands:
        raise SpaceError(f"{path}.candidates", "must be a non-empty list")
    out: List[Candidate] = []
    for i, c in enumerate(cands):
        p = f"{path}.candidates[{i}]"
        if not isinstance(c, Mapping) or "name" not in c:
            raise SpaceError(p, "must be a mapping with a 'name'")
        fam = c.get("family", "skip" if c["name"] == "skip" else "ir")
        params = {k: v for k, v in c.items() if k not in ("name", "family")}
        if fam == "skip":
            if params:
                raise SpaceError(f"{p}.{next(iter(params))}", "a skip takes no parameters")
            out.append(skip(c["name"]))
            continue
        if fam != "ir":
            raise SpaceError(f"{p}.family", f"must be 'ir' or 'skip', not {fam!r}")
        for k in params:
            if k not in _IR_FIELDS:
                raise SpaceError(f"{p}.{k}", f"unknown field; known: {', '.join(sorted(_IR_FIELDS))}")
        try:  # validate the recipe once at a neutral shape so errors surface at load time
            InvertedResidual(c_in=96, h=8, w=8, c_out=96, **params)
        except SpecError as e:
            raise SpaceError(f"{p}.{e.field}", e.reason) from None
        out.append(Candidate(c["name"], "ir", tuple(sorted(params.items()))))
    try:
        return Catalogue(name, tuple(out), data.get("skip_policy", "squeezenas"), data.get("description", ""))
    except SpaceError as e:
        raise SpaceError(f"{path}.{e.path.split('.', 1)[-1]}", e.reason) from None
