"""The op-family registry: each family declares itself once, next to its spec class.

``@register_family`` records what the rest of the tree needs to know about a family, so adding
one touches only the module that defines it (timm's ``@register_model`` style):

- ``roles``: where a search space may place it -- ``block`` (a catalogue candidate at a searchable
  layer), ``fixed`` (a stem or head entry), ``decoder`` (a segmentation head fed by two tensors),
  ``cell`` (an edge of a cell space);
- ``inputs``: how many tensors the op takes (their shapes come from ``OpSpec.input_shapes``);
- MACs and parameters: the spec class's ``macs()`` and ``params()``;
- ``torch``: the ``"module:function"`` that builds its nn.Module, imported only when a module is
  built, so the core stays importable without torch.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, List, Tuple, Type, TypeVar

from lutcore.errors import SpecError, UnknownNameError
from lutcore.ops.base import OpSpec

ROLES = ("block", "fixed", "decoder", "cell")
S = TypeVar("S", bound=OpSpec)


@dataclasses.dataclass(frozen=True)
class Family:
    """One registered op family."""

    name: str
    spec: Type[OpSpec]
    roles: Tuple[str, ...]
    inputs: int
    torch: str

    def torch_builder(self) -> Callable[[Any], Any]:
        """The function that turns a spec of this family into an nn.Module (imports its module now)."""
        module, _, attr = self.torch.partition(":")
        builder: Callable[[Any], Any] = getattr(importlib.import_module(module), attr)
        return builder

    @property
    def fields(self) -> List[str]:
        """The family's own spec fields (those beyond the common shape fields)."""
        common = {f.name for f in dataclasses.fields(OpSpec)}
        return [f.name for f in dataclasses.fields(self.spec) if f.name not in common]


_FAMILIES: Dict[str, Family] = {}


def register_family(
    name: str, *, roles: Tuple[str, ...], torch: str, inputs: int = 1
) -> Callable[[Type[S]], Type[S]]:
    """Class decorator: make an op family known to every layer of the tree (see the module docstring)."""
    bad = [r for r in roles if r not in ROLES]
    if not roles or bad:
        raise ValueError(f"op family {name!r}: roles must be among {', '.join(ROLES)}, not {list(roles)}")
    if ":" not in torch:
        raise ValueError(f"op family {name!r}: torch must be 'module:function', not {torch!r}")
    if inputs < 1:
        raise ValueError(f"op family {name!r}: inputs must be at least 1")

    def deco(cls: Type[S]) -> Type[S]:
        if name in _FAMILIES:
            raise ValueError(f"op family {name!r} registered twice")
        cls.family = name
        _FAMILIES[name] = Family(name, cls, tuple(roles), inputs, torch)
        return cls

    return deco


def unregister_family(name: str) -> None:
    """Forget a family (for families a test defines for itself)."""
    _FAMILIES.pop(name, None)


def families(role: str = "") -> List[str]:
    """Registered family names, sorted; only those that may play ``role`` when given."""
    return sorted(n for n, f in _FAMILIES.items() if not role or role in f.roles)


def get_family(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise UnknownNameError("op family", name, list(_FAMILIES)) from None


def family_class(name: str) -> Type[OpSpec]:
    return get_family(name).spec


def spec_from_dict(data: Dict[str, Any]) -> OpSpec:
    """Rebuild a spec from ``to_dict`` output (or a user's dict); errors name the field."""
    if not isinstance(data, dict):
        raise SpecError("op", "spec", data, "must be an object")
    d = dict(data)
    fam = d.pop("family", None)
    if fam is None:
        raise SpecError("op", "family", None, "is required")
    entry = _FAMILIES.get(fam)
    if entry is None:
        raise SpecError("op", "family", fam, f"unknown op family; known: {', '.join(families())}")
    cls = entry.spec
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k in d:
        if k not in names:
            raise SpecError(fam, k, d[k], "unknown field")
    for k, v in list(d.items()):
        if isinstance(v, list):
            d[k] = tuple(v)
    try:
        return cls(**d)
    except TypeError as e:
        missing = [n for n, f in names.items() if n not in d and f.default is dataclasses.MISSING]
        if missing:
            raise SpecError(fam, missing[0], None, "is required") from e
        raise SpecError(fam, "spec", data, str(e)) from e
