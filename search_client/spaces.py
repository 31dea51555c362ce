"""What a user may pass as ``space``: a registered name, a lutcore Space, a SpaceDef, or a definition mapping."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from lutcore.errors import UnknownNameError
from lutcore.spaces import Space, SpaceDef, get_space, space_from_dict
from lutcore.spaces.cells import CellSpace

SpaceLike = Union[str, Space, SpaceDef, CellSpace, Mapping[str, Any]]
AnySpace = Union[Space, CellSpace]


def resolve_space(space: SpaceLike, resolution: Optional[str] = None) -> Union[Space, CellSpace]:
    """The space placed at ``resolution`` (a Space keeps its own unless another is given)."""
    if isinstance(space, Space):
        if resolution is None or _res(resolution) == space.resolution_str:
            return space
        return space.definition.at(resolution)
    if isinstance(space, SpaceDef):
        return space.at(resolution)
    if isinstance(space, CellSpace):  # cell spaces are built-ins: placed again by name
        if resolution is None or _res(resolution) == space.resolution_str:
            return space
        return get_space(space.name, resolution)
    if isinstance(space, Mapping):
        return space_from_dict(space).at(resolution)
    if isinstance(space, str):
        return get_space(space, resolution)
    kind = type(space).__name__
    raise TypeError(f"space must be a name, a lutcore Space/SpaceDef/CellSpace or a definition mapping, not {kind}")


def chain_space(space: SpaceLike, resolution: Optional[str] = None, what: str = "this") -> Space:
    """The chain space ``space`` names; a cell space is refused with the call that serves it."""
    sp = resolve_space(space, resolution)
    if isinstance(sp, CellSpace):
        raise TypeError(f"{what} is for chain spaces; {sp.name} is a cell space: use cell_costs()")
    return sp


def try_resolve(space: SpaceLike, resolution: Optional[str]) -> Optional[Union[Space, CellSpace]]:
    """Like resolve_space, but None for a name only the server knows (a space registered there)."""
    try:
        return resolve_space(space, resolution)
    except UnknownNameError:
        if isinstance(space, str):
            return None
        raise


def wire_space(space: SpaceLike, local: Optional[AnySpace]) -> Tuple[Union[str, Dict[str, Any]], str]:
    """(what to send as ``space`` in a request, a display name). Built-ins go by name, others by definition."""
    if isinstance(space, str):
        return space, space
    sdef = local.definition if local is not None else None
    if isinstance(space, CellSpace):
        return space.name, space.name
    if isinstance(space, Mapping):
        return dict(space), str(space.get("name", "custom"))
    assert sdef is not None
    try:
        builtin = get_space(sdef.name).definition
    except UnknownNameError:
        builtin = None
    if builtin is not None and builtin == sdef:
        return sdef.name, sdef.name
    return sdef.to_dict(), sdef.name


def _res(text: str) -> str:
    from lutcore.spaces import parse_resolution

    h, w = parse_resolution(text)  # type: ignore[misc]
    return f"{h}x{w}"


def resolution_of(space: SpaceLike, resolution: Optional[str], local: Optional[AnySpace]) -> Optional[str]:
    """The resolution to send: the caller's, else the local space's (None lets the server use the default)."""
    if resolution is not None:
        return _res(resolution)
    if local is not None:
        return local.resolution_str
    return None


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A space argument worked out once: the local Space (None if only the server knows it), what to
    send, its display name, the resolution to send and the id it is cached under."""

    local: Optional[AnySpace]
    wire: Union[str, Dict[str, Any]]
    name: str
    resolution: Optional[str]
    space_id: str


class SpaceResolver:
    """Memoises ``Resolved`` per space argument, so a cached cost matrix costs a dict lookup, not a
    rebuild of the space (building squeezenas-xlarge takes milliseconds)."""

    def __init__(self) -> None:
        self._memo: Dict[Tuple[Any, ...], Tuple[Any, Resolved]] = {}

    @staticmethod
    def key(space: SpaceLike, resolution: Optional[str]) -> Tuple[Any, ...]:
        """A hashable key for the argument: a definition by content, a Space/SpaceDef (frozen) by identity;
        once resolved, the memo holds the object, so its id is never reused for another."""
        if isinstance(space, str):
            return ("name", space, resolution)
        if isinstance(space, Mapping):
            return ("def", json.dumps(space, sort_keys=True, default=str), resolution)
        return ("obj", id(space), resolution)

    def __call__(self, space: SpaceLike, resolution: Optional[str]) -> Resolved:
        key = self.key(space, resolution)
        hit = self._memo.get(key)
        if hit is not None:
            return hit[1]
        from search_client.cache import space_id

        local = try_resolve(space, resolution)
        wire, name = wire_space(space, local)
        res = resolution_of(space, resolution, local)
        out = Resolved(local, wire, name, res, space_id(wire))
        self._memo[key] = (space, out)
        return out
