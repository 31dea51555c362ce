"""Candidate catalogues; importing registers the built-in ones."""

from lutcore.catalogues import builtin as _builtin  # noqa: F401  (registers built-ins)
from lutcore.catalogues import elastic as _elastic  # noqa: F401  (registers the width-elastic ones)
from lutcore.catalogues.base import (
    Candidate,
    Catalogue,
    Invalid,
    LayerSlot,
    candidate,
    catalogue_from_dict,
    catalogue_names,
    get_catalogue,
    ir,
    register_catalogue,
    skip,
)

__all__ = [
    "Candidate",
    "Catalogue",
    "Invalid",
    "LayerSlot",
    "candidate",
    "catalogue_from_dict",
    "catalogue_names",
    "get_catalogue",
    "ir",
    "register_catalogue",
    "skip",
]
