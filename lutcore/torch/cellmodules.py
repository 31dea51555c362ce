"""Torch modules of the cell op families (DARTS's SepConv, DilConv, ReLU-conv-BN, pools, node sums, concat,
upsampling)."""

from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lutcore.ops import DilConv, Pool, ReluConvBN, SepConv
from lutcore.ops.cellops import Concat, NodeAdd, Upsample


def _relu_dw_pw_bn(c_in: int, c_out: int, k: int, stride: int, dilation: int) -> List[nn.Module]:
    pad = dilation * (k - 1) // 2
    return [
        nn.ReLU(inplace=False),  # inputs are shared by several edges: never rectify them in place
        nn.Conv2d(c_in, c_in, k, stride, pad, dilation, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
    ]


def build_sep_conv(s: SepConv) -> nn.Module:
    return nn.Sequential(
        *_relu_dw_pw_bn(s.c_in, s.c_in, s.kernel, s.stride, s.dilation),
        *_relu_dw_pw_bn(s.c_in, s.c_out, s.kernel, 1, s.dilation),
    )


def build_dil_conv(s: DilConv) -> nn.Module:
    return nn.Sequential(*_relu_dw_pw_bn(s.c_in, s.c_out, s.kernel, s.stride, s.dilation))


def build_rcb(s: ReluConvBN) -> nn.Module:
    layers: List[nn.Module] = []
    pad = s.dilation * (s.kernel - 1) // 2
    for r in range(s.repeat):
        c_in, stride = (s.c_in, s.stride) if r == 0 else (s.c_out, 1)
        layers += [
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, s.c_out, s.kernel, stride, pad, s.dilation, bias=False),
            nn.BatchNorm2d(s.c_out),
        ]
    return nn.Sequential(*layers)


def build_pool(s: Pool) -> nn.Module:
    if s.mode == "max":
        return nn.MaxPool2d(s.kernel, s.stride, padding=s.kernel // 2)
    return nn.AvgPool2d(s.kernel, s.stride, padding=s.kernel // 2, count_include_pad=False)


class Add(nn.Module):
    """A node sum's step: what ``cellnet`` runs for every input of a node after the first."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class CatParts(nn.Module):
    """A cell's concat of ``parts`` nodes, fed as one tensor cut into the parts (see ``Concat``)."""

    def __init__(self, parts: int) -> None:
        super().__init__()
        self.parts = parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(x.chunk(self.parts, dim=1), dim=1)


def build_add(s: NodeAdd) -> nn.Module:
    return Add()


def build_concat(s: Concat) -> nn.Module:
    return CatParts(s.parts)


class Resize(nn.Module):
    """Bilinear resize to a fixed size: what ``cellnet`` runs on an aggregation output coarser than the first."""

    def __init__(self, size: Tuple[int, int]) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)


def build_upsample(s: Upsample) -> nn.Module:
    return Resize(s.out_hw)
