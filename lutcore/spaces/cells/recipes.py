"""Cell op names (``sep_conv_3x3``, ``conv_3x3_x2``, ...) and how each becomes an op spec on an edge.

The recipes are data (``data/cells.json``); a recipe placed at an edge's shape and stride is an op
spec, or None for the zero op (an edge that carries nothing and is removed when deployed).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from lutcore.errors import SpaceError, SpecError
from lutcore.ops import OpSpec, Skip, families, family_class
from lutcore.spaces.datafiles import DATA

_DATA: Optional[Dict[str, Any]] = None


def cell_data() -> Dict[str, Any]:
    """The parsed ``data/cells.json`` (spaces, recipes, genotypes, named architectures)."""
    global _DATA
    if _DATA is None:
        _DATA = json.loads((DATA / "cells.json").read_text())
    return _DATA


def recipe(name: str) -> Mapping[str, Any]:
    recipes = cell_data()["op_recipes"]
    if name not in recipes:
        raise SpaceError("ops", f"unknown cell op {name!r}; known: {', '.join(sorted(recipes))}")
    return recipes[name]


def is_zero(name: str) -> bool:
    return recipe(name)["family"] == "zero"


def skip_spec(c_in: int, h: int, w: int, c_out: int, stride: int, batch: int) -> Skip:
    """DARTS's skip: identity when the shape is kept, factorized reduce at stride 2, ReLU-1x1-BN otherwise."""
    if stride == 2:
        return Skip(c_in, h, w, c_out, stride=2, batch=batch, mode="factorized_reduce")
    mode = "identity" if c_in == c_out else "relu_conv_bn"
    return Skip(c_in, h, w, c_out, stride=1, batch=batch, mode=mode)


def place_op(name: str, c_in: int, h: int, w: int, c_out: int, stride: int, batch: int, where: str) -> Optional[OpSpec]:
    """The spec of cell op ``name`` at this edge, None for the zero op; errors name the edge."""
    r = dict(recipe(name))
    fam = r.pop("family")
    try:
        if fam == "zero":
            return None
        if fam == "skip":
            return skip_spec(c_in, h, w, c_out, stride, batch)
        if fam not in families("cell"):
            raise SpaceError(where, f"{name}: {fam!r} is not an op family of cell spaces")
        return family_class(fam)(c_in=c_in, h=h, w=w, c_out=c_out, stride=stride, batch=batch, **r)
    except SpecError as e:
        raise SpaceError(where, f"{name} cannot sit here: {e}") from None


def preprocess_spec(src: tuple, dst_hw: tuple, c_out: int, batch: int, where: str) -> Skip:
    """DARTS's cell-input preprocessing: ReLU-1x1-BN at the same size, factorized reduce from twice the size."""
    c, h, w = src
    if (h, w) == tuple(dst_hw):
        return Skip(c, h, w, c_out, stride=1, batch=batch, mode="relu_conv_bn")
    if (h, w) == (2 * dst_hw[0], 2 * dst_hw[1]):
        return Skip(c, h, w, c_out, stride=2, batch=batch, mode="factorized_reduce")
    raise SpaceError(where, f"a cell input of {h}x{w} cannot be brought to {dst_hw[0]}x{dst_hw[1]}")
