"""Op families of cell-based spaces (DARTS, AutoRTNet): ReLU-first convolutions and pools.

All are DARTS-style: the ReLU comes before the convolution, batch norm after it, and only the
first convolution carries the stride. Pools have no parameters and no MACs (FLOP counters skip them).
"""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

from lutcore.ops.base import OpSpec, conv_out
from lutcore.ops.registry import register_family

CELL_DILATIONS = (1, 2, 3, 4, 8)
POOL_MODES = ("max", "avg")
UPSAMPLE_FACTORS = (2, 4, 8)
_TORCH = "lutcore.torch.cellmodules"


@dataclasses.dataclass(frozen=True)
class _KxK(OpSpec):
    kernel: int = 3
    dilation: int = 1

    def _check_kernel(self, kernels: Tuple[int, ...]) -> None:
        self._check_choice("kernel", kernels)
        self._check_choice("dilation", CELL_DILATIONS)

    @property
    def out_hw(self) -> Tuple[int, int]:
        return (
            conv_out(self.h, self.kernel, self.stride, self.dilation),
            conv_out(self.w, self.kernel, self.stride, self.dilation),
        )

    def _tag(self) -> str:
        return f"k{self.kernel}_d{self.dilation}"


@register_family("sep_conv", roles=("cell",), torch=f"{_TORCH}:build_sep_conv")
@dataclasses.dataclass(frozen=True)
class SepConv(_KxK):
    """DARTS SepConv, twice: ReLU -> kxk depthwise (stride, dilation) -> 1x1 -> BN -> ReLU ->
    kxk depthwise -> 1x1 to c_out -> BN. AutoRTNet's "dilated separable conv, repeat 2" is this op."""

    def validate(self) -> None:
        self._check_kernel((3, 5, 7))

    def macs(self) -> int:
        ho, wo = self.out_hw
        c, k2 = self.c_in, self.kernel**2
        return ho * wo * (2 * c * k2 + c * c + c * self.c_out) * self.batch

    def params(self) -> int:
        c, k2 = self.c_in, self.kernel**2
        return (c * k2 + c * c + 2 * c) + (c * k2 + c * self.c_out + 2 * self.c_out)


@register_family("dil_conv", roles=("cell",), torch=f"{_TORCH}:build_dil_conv")
@dataclasses.dataclass(frozen=True)
class DilConv(_KxK):
    """DARTS DilConv: ReLU -> kxk depthwise (stride, dilation) -> 1x1 to c_out -> BN."""

    dilation: int = 2

    def validate(self) -> None:
        self._check_kernel((3, 5, 7))

    def macs(self) -> int:
        ho, wo = self.out_hw
        return ho * wo * (self.c_in * self.kernel**2 + self.c_in * self.c_out) * self.batch

    def params(self) -> int:
        return self.c_in * self.kernel**2 + self.c_in * self.c_out + 2 * self.c_out


@register_family("rcb", roles=("cell",), torch=f"{_TORCH}:build_rcb")
@dataclasses.dataclass(frozen=True)
class ReluConvBN(_KxK):
    """(ReLU -> kxk conv -> BN) ``repeat`` times; the first maps c_in -> c_out with the stride.

    AutoRTNet's intra-cell "3x3 conv" (repeat 1) and "3x3 conv x2", its aggregation "1x1 conv x2".
    """

    repeat: int = 1

    def validate(self) -> None:
        self._check_kernel((1, 3, 5, 7))
        self._check_int("repeat", positive=True)

    def macs(self) -> int:
        ho, wo = self.out_hw
        k2, o = self.kernel**2, self.c_out
        return ho * wo * k2 * o * (self.c_in + (self.repeat - 1) * o) * self.batch

    def params(self) -> int:
        k2, o = self.kernel**2, self.c_out
        return k2 * o * (self.c_in + (self.repeat - 1) * o) + 2 * o * self.repeat

    def _tag(self) -> str:
        return f"{super()._tag()}_r{self.repeat}"


@register_family("pool", roles=("cell",), torch=f"{_TORCH}:build_pool")
@dataclasses.dataclass(frozen=True)
class Pool(OpSpec):
    """3x3 max or average pool, padding 1 (average over the valid cells only, as DARTS's)."""

    mode: str = "max"
    kernel: int = 3

    def validate(self) -> None:
        self._check_choice("mode", POOL_MODES)
        self._check_choice("kernel", (3,))
        if self.c_in != self.c_out:
            self._fail("c_out", f"a pool keeps its channels (c_in={self.c_in})")

    def macs(self) -> int:
        return 0

    def params(self) -> int:
        return 0

    def _tag(self) -> str:
        return f"{self.mode}_k{self.kernel}"


@dataclasses.dataclass(frozen=True)
class _Glue(OpSpec):
    """A cell's glue: it keeps the map (unless it resizes it) and has no MACs and no parameters, but is not
    free: the node sums and the concatenation are 2-4% of a DARTS CIFAR network on a CPU (docs/spaces.md,
    "What the LUT sum of a cell network misses")."""

    @property
    def out_hw(self) -> Tuple[int, int]:
        return self.h, self.w

    def macs(self) -> int:
        return 0

    def params(self) -> int:
        return 0


@register_family("add", roles=("cell",), inputs=2, torch=f"{_TORCH}:build_add")
@dataclasses.dataclass(frozen=True)
class NodeAdd(_Glue):
    """One elementwise add of two c x h x w tensors: an intermediate node with m inputs runs m - 1."""

    def validate(self) -> None:
        if self.c_in != self.c_out or self.stride != 1:
            self._fail("c_out", "an add keeps its shape (c_out = c_in, stride 1)")

    @property
    def input_shapes(self) -> List[Tuple[int, ...]]:
        return [self.in_shape, self.in_shape]

    def _tag(self) -> str:
        return "x2"


@register_family("concat", roles=("cell",), torch=f"{_TORCH}:build_concat")
@dataclasses.dataclass(frozen=True)
class Concat(_Glue):
    """A cell's output: its ``parts`` intermediate nodes (c_in / parts channels each) concatenated.

    Timed as one c_in-channel input cut into ``parts`` and copied back together: the bytes the cell's
    concat moves, with one input tensor (every backend exports one- and two-input ops)."""

    parts: int = 2

    def validate(self) -> None:
        self._check_int("parts", positive=True)
        if self.c_out != self.c_in or self.c_in % self.parts or self.stride != 1:
            self._fail("parts", f"needs c_out = c_in (c_in={self.c_in}) divisible by parts, and stride 1")

    def _tag(self) -> str:
        return f"n{self.parts}"


@register_family("upsample", roles=("cell",), torch=f"{_TORCH}:build_upsample")
@dataclasses.dataclass(frozen=True)
class Upsample(_Glue):
    """Bilinear resize by an integer ``factor`` (align_corners=False): AutoRTNet's aggregation cell brings
    its coarser outputs to the finest one's size before the concat. FLOP counters count no MACs for it."""

    factor: int = 2

    def validate(self) -> None:
        self._check_choice("factor", UPSAMPLE_FACTORS)
        if self.c_in != self.c_out or self.stride != 1:
            self._fail("c_out", "an upsampling keeps its channels (c_out = c_in, stride 1)")

    @property
    def out_hw(self) -> Tuple[int, int]:
        return self.h * self.factor, self.w * self.factor

    def _tag(self) -> str:
        return f"bilinear_x{self.factor}"
