"""Building blocks shared by the op modules."""

from __future__ import annotations

import torch
from torch import nn


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "swish":
        return nn.SiLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel: int = 1,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    act: str = "relu",
    bn: bool = True,
    bias: bool = False,
) -> nn.Sequential:
    pad = dilation * (kernel - 1) // 2
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, pad, dilation, groups, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(activation(act))
    return nn.Sequential(*layers)


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: interleave the groups so grouped 1x1 convs mix channels."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class SqueezeExcite(nn.Module):
    """Average pool -> 1x1 (bias) -> act -> 1x1 (bias) -> sigmoid, scaling the input."""

    def __init__(self, channels: int, hidden: int, act: str) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = activation(act if act != "none" else "relu")
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * s
