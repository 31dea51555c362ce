"""Op specs by family. Importing this package registers every built-in family."""

from lutcore.ops.base import (
    ACTIVATIONS,
    OpSpec,
    conv_out,
    families,
    family_class,
    register_family,
    spec_from_dict,
)
from lutcore.ops.blocks import InvertedResidual, Skip
from lutcore.ops.cellops import DilConv, Pool, ReluConvBN, SepConv
from lutcore.ops.layers import LRASPP, Conv, DepthwiseASPP, PoolFC

__all__ = [
    "ACTIVATIONS",
    "Conv",
    "DepthwiseASPP",
    "DilConv",
    "InvertedResidual",
    "LRASPP",
    "OpSpec",
    "Pool",
    "PoolFC",
    "ReluConvBN",
    "SepConv",
    "Skip",
    "conv_out",
    "families",
    "family_class",
    "register_family",
    "spec_from_dict",
]
