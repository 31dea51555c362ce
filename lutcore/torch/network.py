"""A whole network for a space plus one choice per layer, as it would be deployed."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from lutcore.spaces import Arch
from lutcore.torch.modules import build_op


class Network(nn.Module):
    """stem -> chosen layers (identity skips removed) -> head -> [decoder(deep, low-level)]."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        space = arch.space
        self.stem = nn.Sequential(*[build_op(f.spec) for f in space.stem])
        self.layers = nn.ModuleList()
        self.low_index: Optional[int] = None
        dec = space.definition.decoder
        low_layer = dec["low_level_layer"] if dec is not None else None
        for i, spec in enumerate(arch.layer_ops()):
            if not spec.is_identity:
                self.layers.append(build_op(spec))
            if i == low_layer:
                self.low_index = len(self.layers)  # low-level = output after this many modules
        self.head = nn.Sequential(*[build_op(f.spec) for f in space.head])
        self.decoder = build_op(space.decoder.spec) if space.decoder else None
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        low = x
        for i, layer in enumerate(self.layers):
            if i == self.low_index:
                low = x
            x = layer(x)
        if self.low_index == len(self.layers):
            low = x
        x = self.head(x)
        if self.decoder is not None:
            x = self.decoder(x, low)
        return x


def build_network(arch: Any) -> nn.Module:
    """The deployed network of a chain ``Arch`` or a cell ``CellArch``."""
    from lutcore.spaces.cells import CellArch

    if isinstance(arch, CellArch):
        from lutcore.torch.cellnet import CellNetwork

        return CellNetwork(arch)
    return Network(arch)


def network_input(arch: Any, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    d = arch.space.definition
    h, w = arch.space.resolution
    return torch.randn((d.batch, d.input[0], h, w), device=device, dtype=dtype)
