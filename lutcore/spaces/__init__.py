"""Search spaces: definitions, resolution into op grids, the registry, and architectures."""

from lutcore.spaces.architectures import (
    AnyArch,
    Arch,
    arch_names,
    get_arch,
    get_chain_arch,
    make_arch,
    paper_figures,
    parse_arch_list,
    published_names,
    random_arch,
)
from lutcore.spaces.definition import load_space_file, space_from_dict
from lutcore.spaces.registry import (
    get_cell_space,
    get_chain_space,
    get_space,
    get_space_def,
    register_space,
    space_names,
)
from lutcore.spaces.space import FixedOp, LayerDef, Space, SpaceDef, parse_resolution

__all__ = [
    "AnyArch",
    "Arch",
    "FixedOp",
    "LayerDef",
    "Space",
    "SpaceDef",
    "arch_names",
    "get_arch",
    "get_chain_arch",
    "get_cell_space",
    "get_chain_space",
    "get_space",
    "get_space_def",
    "load_space_file",
    "make_arch",
    "paper_figures",
    "parse_arch_list",
    "parse_resolution",
    "published_names",
    "random_arch",
    "register_space",
    "space_from_dict",
    "space_names",
]
