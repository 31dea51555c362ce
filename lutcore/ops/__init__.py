"""Op specs by family. Importing this package registers every built-in family."""

from lutcore.ops.base import ACTIVATIONS, OpSpec, conv_out
from lutcore.ops.blocks import InvertedResidual, Skip
from lutcore.ops.cellops import DilConv, Pool, ReluConvBN, SepConv
from lutcore.ops.layers import LRASPP, Conv, DepthwiseASPP, GlobalAvgPool, PoolFC
from lutcore.ops.registry import (
    ROLES,
    Family,
    families,
    family_class,
    get_family,
    register_family,
    spec_from_dict,
    unregister_family,
)

__all__ = [
    "ACTIVATIONS",
    "Conv",
    "DepthwiseASPP",
    "DilConv",
    "Family",
    "GlobalAvgPool",
    "InvertedResidual",
    "LRASPP",
    "OpSpec",
    "Pool",
    "PoolFC",
    "ROLES",
    "ReluConvBN",
    "SepConv",
    "Skip",
    "conv_out",
    "families",
    "family_class",
    "get_family",
    "register_family",
    "spec_from_dict",
    "unregister_family",
]
