"""One nn.Module per op family, built from a spec: ``build_op(spec)``.

Each family names its builder in its ``@register_family`` declaration (``lutcore.ops.registry``);
the builders of the built-in chain families live here. Decoders (``lr_aspp``, ``aspp_dw``) take two
inputs: the deep features and the low-level ones.
"""

from __future__ import annotations

from typing import List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from lutcore.ops import LRASPP, Conv, DepthwiseASPP, GlobalAvgPool, InvertedResidual, OpSpec, PoolFC, Skip, get_family
from lutcore.torch.layers import ChannelShuffle, SqueezeExcite, activation, conv_bn_act


def build_op(spec: OpSpec) -> nn.Module:
    """The op as an nn.Module in eval mode (batch-norm statistics frozen, as deployed)."""
    module: nn.Module = get_family(spec.family).torch_builder()(spec)
    return module.eval()


def example_inputs(
    spec: OpSpec, device: Union[torch.device, str] = "cpu", dtype: torch.dtype = torch.float32
) -> Tuple[torch.Tensor, ...]:
    """Random inputs of the spec's declared shape(s)."""
    return tuple(torch.randn(shape, device=device, dtype=dtype) for shape in spec.input_shapes)


class InvertedResidualBlock(nn.Module):
    def __init__(self, s: InvertedResidual) -> None:
        super().__init__()
        m = s.hidden
        layers: List[nn.Module] = []
        if s.pw_expand:
            layers.append(conv_bn_act(s.c_in, m, 1, groups=s.groups, act=s.act))
            if s.shuffle:
                layers.append(ChannelShuffle(s.groups))
        layers.append(conv_bn_act(m, m, s.kernel, s.stride, s.dilation, groups=m, act=s.act))
        if s.se:
            mbv3 = s.se_style == "mbv3"  # OFA's SEModule: ReLU inside, hard-sigmoid gate
            layers.append(SqueezeExcite(m, s.se_hidden, "relu" if mbv3 else s.act, hard_gate=mbv3))
        layers.append(conv_bn_act(m, s.c_out, 1, groups=s.groups, act="none"))
        self.body = nn.Sequential(*layers)
        self.residual = s.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def build_ir(s: InvertedResidual) -> nn.Module:
    return InvertedResidualBlock(s)


class FactorizedReduce(nn.Module):
    """ReLU, then two 1x1 stride-2 conv-BN branches (on x and x shifted by one pixel), concatenated."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.a = conv_bn_act(c_in, c_out // 2, 1, 2, act="none")
        self.b = conv_bn_act(c_in, c_out - c_out // 2, 1, 2, act="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return torch.cat([self.a(x), self.b(x[:, :, 1:, 1:])], dim=1)


def build_skip(s: Skip) -> nn.Module:
    if s.mode == "identity":
        return nn.Identity()
    if s.mode == "factorized_reduce":
        return FactorizedReduce(s.c_in, s.c_out)
    if s.mode == "relu_conv_bn":
        return nn.Sequential(nn.ReLU(inplace=False), conv_bn_act(s.c_in, s.c_out, 1, s.stride, act="none"))
    return conv_bn_act(s.c_in, s.c_out, 1, s.stride, act="relu")


def build_conv(s: Conv) -> nn.Module:
    return conv_bn_act(s.c_in, s.c_out, s.kernel, s.stride, s.dilation, s.groups, s.act, s.bn, s.bias)


def build_gap(s: GlobalAvgPool) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1)


def build_pool_fc(s: PoolFC) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(s.c_in, s.c_out))


class LRASPPHead(nn.Module):
    def __init__(self, s: LRASPP) -> None:
        super().__init__()
        self.s = s
        self.t1 = conv_bn_act(s.c_in, s.mid, 1)
        self.pool = nn.AvgPool2d(s.pool_kernel, s.pool_stride, count_include_pad=False)
        self.t2 = nn.Conv2d(s.c_in, s.mid, 1, bias=True)
        self.t3 = nn.Conv2d(s.mid, s.c_out, 1, bias=True)
        self.t4 = nn.Conv2d(s.c_low, s.c_out, 1, bias=True)

    def forward(self, x: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        s = self.s
        t1 = self.t1(x)
        t2 = torch.sigmoid(self.t2(self.pool(x)))
        t2 = F.interpolate(t2, size=(s.h, s.w), mode="bilinear", align_corners=False)
        t3 = F.interpolate(t1 * t2, size=(s.h_low, s.w_low), mode="bilinear", align_corners=False)
        y = self.t3(t3) + self.t4(low)
        return F.interpolate(y, size=s.out_hw, mode="bilinear", align_corners=True)


def build_lr_aspp(s: LRASPP) -> nn.Module:
    return LRASPPHead(s)


class DepthwiseASPPHead(nn.Module):
    def __init__(self, s: DepthwiseASPP) -> None:
        super().__init__()
        self.s = s
        m = s.mid
        self.b0 = conv_bn_act(s.c_in, m, 1)
        self.atrous = nn.ModuleList(conv_bn_act(s.c_in, m, 3, 1, r, groups=m) for r in s.rates)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.project = conv_bn_act(s.cat_channels, m, 1)
        self.low = nn.Conv2d(s.c_low, s.c_low, 1, bias=True)
        c = m + s.c_low
        self.fuse = conv_bn_act(c, c, 3, groups=c)
        self.classify = nn.Conv2d(c, s.c_out, 1, bias=True)

    def forward(self, x: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        s = self.s
        pooled = F.interpolate(self.pool(x), size=(s.h, s.w), mode="nearest")
        y = torch.cat([self.b0(x)] + [a(x) for a in self.atrous] + [pooled], dim=1)
        y = F.interpolate(self.project(y), size=(s.h_low, s.w_low), mode="bilinear", align_corners=False)
        y = self.classify(self.fuse(torch.cat([y, self.low(low)], dim=1)))
        return F.interpolate(y, size=s.out_hw, mode="bilinear", align_corners=False)


def build_aspp_dw(s: DepthwiseASPP) -> nn.Module:
    return DepthwiseASPPHead(s)


__all__ = ["activation", "build_op", "example_inputs"]
