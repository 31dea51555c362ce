"""Placing a space definition's fixed entries (stem, head, decoder) at the shape that feeds them.

Which fields an entry takes, and how they map onto a spec, is the entry's op family's business
(``OpSpec.from_entry``); this module only turns their errors into paths into the definition.
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple, Union

from lutcore.catalogues import Invalid
from lutcore.errors import SpaceError, SpecError
from lutcore.ops import OpSpec, family_class

Shape = Tuple[int, int, int]
Cell = Union[OpSpec, Invalid]


def fixed_spec(op: Mapping[str, Any], c_in: int, h: int, w: int, batch: int, path: str) -> OpSpec:
    """The op spec of a stem/head entry placed at an input shape."""
    try:
        return family_class(op["op"]).from_entry(op, (c_in, h, w), batch)
    except SpecError as e:
        raise SpaceError(f"{path}.{e.field}", f"{e.value!r}: {e.reason}") from None
    except (TypeError, ValueError) as e:
        raise SpaceError(path, str(e)) from None


def decoder_spec(dec: Mapping[str, Any], deep: Shape, low: Shape, batch: int) -> OpSpec:
    """The decoder's spec, fed the deep features and the low-level ones."""
    try:
        return family_class(dec["op"]).from_entry(dec, deep, batch, low)
    except SpecError as e:
        raise SpaceError(f"decoder.{e.field}", f"{e.value!r}: {e.reason}") from None
    except (TypeError, ValueError) as e:
        raise SpaceError("decoder", str(e)) from None
