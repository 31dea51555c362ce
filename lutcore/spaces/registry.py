"""Registry of named spaces. Built-ins come from ``data/*.yaml``; ``@register_space`` adds more."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Union

from lutcore.errors import SpaceError, UnknownNameError
from lutcore.spaces.datafiles import DATA
from lutcore.spaces.definition import load_space_file
from lutcore.spaces.space import Resolution, Space, SpaceDef

if TYPE_CHECKING:
    from lutcore.spaces.cells import CellSpace, CellSpaceDef

AnySpaceDef = Union[SpaceDef, "CellSpaceDef"]
AnySpace = Union[Space, "CellSpace"]

_FACTORIES: Dict[str, Callable[[], AnySpaceDef]] = {}
_CACHE: Dict[str, AnySpaceDef] = {}


def register_space(name: str) -> Callable[[Callable[[], AnySpaceDef]], Callable[[], AnySpaceDef]]:
    """Decorator: register a function returning a SpaceDef under ``name``."""

    def deco(fn: Callable[[], AnySpaceDef]) -> Callable[[], AnySpaceDef]:
        if name in _FACTORIES:
            raise ValueError(f"space {name!r} registered twice")
        _FACTORIES[name] = fn
        return fn

    return deco


def _const(sdef: AnySpaceDef) -> Callable[[], AnySpaceDef]:
    return lambda: sdef


def _register_cells() -> None:
    from lutcore.spaces.cells import cell_space_defs  # late: cells build on this package

    for name, cdef in cell_space_defs().items():
        register_space(name)(_const(cdef))


def _register_file(path: Path) -> None:
    for sdef in load_space_file(path, resolve=False):  # built-ins: tests/core/test_torch.py resolves each
        register_space(sdef.name)(_const(sdef))


def space_names() -> List[str]:
    _load_builtins()
    return list(_FACTORIES)


def get_space_def(name: str) -> AnySpaceDef:
    """A registered space by name, or a space file's only/first space when ``name`` is a path."""
    _load_builtins()
    if name not in _FACTORIES:
        p = Path(name)
        if p.suffix.lower() in (".yaml", ".yml", ".json") and p.exists():
            return load_space_file(p)[0]
        raise UnknownNameError("space", name, list(_FACTORIES))
    if name not in _CACHE:
        _CACHE[name] = _FACTORIES[name]()
    return _CACHE[name]


def get_space(name: str, resolution: Union[str, Resolution, None] = None) -> AnySpace:
    """A space at a resolution: a chain ``Space``, or a ``CellSpace`` for the cell spaces (darts-*, autortnet)."""
    return get_space_def(name).at(resolution)


def get_chain_space(name: str, resolution: Union[str, Resolution, None] = None) -> Space:
    """``get_space`` for a caller that needs a chain space (layers of candidate blocks): typed as one,
    and a clear error for a cell space instead of an attribute error later."""
    sp = get_space(name, resolution)
    if not isinstance(sp, Space):
        raise SpaceError(name, "a cell space (cells of edges), not a chain of layers")
    return sp


def get_cell_space(name: str, resolution: Union[str, Resolution, None] = None) -> CellSpace:
    """``get_space`` for a caller that needs a cell space (darts-*, autortnet), typed as one."""
    from lutcore.spaces.cells import CellSpace

    sp = get_space(name, resolution)
    if not isinstance(sp, CellSpace):
        raise SpaceError(name, "a chain of layers, not a cell space")
    return sp


_loaded = False
_lock = threading.Lock()


def _load_builtins() -> None:
    """Load the built-in files once; threads arriving together wait for the first to finish."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for f in sorted(DATA.glob("*.yaml")):
            _register_file(f)
        _register_cells()
        _loaded = True
