"""What a user may pass as ``space``: a registered name, a lutcore Space, a SpaceDef, or a definition mapping."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Union

from lutcore.errors import UnknownNameError
from lutcore.spaces import Space, SpaceDef, get_space, space_from_dict

SpaceLike = Union[str, Space, SpaceDef, Mapping[str, Any]]


def resolve_space(space: SpaceLike, resolution: Optional[str] = None) -> Space:
    """The space placed at ``resolution`` (a Space keeps its own unless another is given)."""
    if isinstance(space, Space):
        if resolution is None or _res(resolution) == space.resolution_str:
            return space
        return space.definition.at(resolution)
    if isinstance(space, SpaceDef):
        return space.at(resolution)
    if isinstance(space, Mapping):
        return space_from_dict(space).at(resolution)
    if isinstance(space, str):
        return get_space(space, resolution)
    raise TypeError(f"space must be a name, a lutcore Space/SpaceDef or a definition mapping, not {type(space).__name__}")


def try_resolve(space: SpaceLike, resolution: Optional[str]) -> Optional[Space]:
    """Like resolve_space, but None for a name only the server knows (a space registered there)."""
    try:
        return resolve_space(space, resolution)
    except UnknownNameError:
        if isinstance(space, str):
            return None
        raise


def wire_space(space: SpaceLike, local: Optional[Space]) -> Tuple[Union[str, Dict[str, Any]], str]:
    """(what to send as ``space`` in a request, a display name). Built-ins go by name, others by definition."""
    if isinstance(space, str):
        return space, space
    sdef = local.definition if local is not None else None
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


def resolution_of(space: SpaceLike, resolution: Optional[str], local: Optional[Space]) -> Optional[str]:
    """The resolution to send: the caller's, else the local space's (None lets the server use the default)."""
    if resolution is not None:
        return _res(resolution)
    if local is not None:
        return local.resolution_str
    return None
