"""Fixed op families: plain convolutions (stems, heads) and classifier / segmentation heads."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Tuple

from lutcore.ops.base import ACTIVATIONS, KERNELS, Dims, OpSpec, conv_out
from lutcore.ops.registry import register_family

_TORCH = "lutcore.torch.modules"


@register_family("conv", roles=("fixed",), torch=f"{_TORCH}:build_conv")
@dataclasses.dataclass(frozen=True)
class Conv(OpSpec):
    """kxk conv (groups, dilation, optional bias) -> [BN] -> act."""

    kernel: int = 3
    dilation: int = 1
    groups: int = 1
    bn: bool = True
    bias: bool = False
    act: str = "relu"

    def validate(self) -> None:
        self._check_choice("kernel", KERNELS)
        self._check_choice("dilation", (1, 2, 3, 4))
        self._check_choice("act", ACTIVATIONS)
        self._check_int("groups", positive=True)
        self._check_divides("groups", ("c_in", self.c_in), ("c_out", self.c_out))
        for f in ("bn", "bias"):
            if not isinstance(getattr(self, f), bool):
                self._fail(f, "must be true or false")

    @property
    def out_hw(self) -> Tuple[int, int]:
        return (
            conv_out(self.h, self.kernel, self.stride, self.dilation),
            conv_out(self.w, self.kernel, self.stride, self.dilation),
        )

    def macs(self) -> int:
        ho, wo = self.out_hw
        return ho * wo * self.c_out * (self.c_in // self.groups) * self.kernel**2 * self.batch

    def params(self) -> int:
        n = self.c_out * (self.c_in // self.groups) * self.kernel**2
        return n + (self.c_out if self.bias else 0) + (2 * self.c_out if self.bn else 0)

    def _tag(self) -> str:
        tag = f"k{self.kernel}_d{self.dilation}_g{self.groups}"
        if self.bn:
            tag += "_bn"
        if self.bias:
            tag += "_bias"
        return tag

    def _key_parts(self) -> List[str]:
        return super()._key_parts() + [self.act]


@register_family("pool_fc", roles=("fixed",), torch=f"{_TORCH}:build_pool_fc")
@dataclasses.dataclass(frozen=True)
class PoolFC(OpSpec):
    """Global average pool -> linear to ``c_out`` classes (a classifier's last op)."""

    def _check_stride(self) -> None:
        if self.stride != 1:
            self._fail("stride", "pool_fc has no stride; use 1")

    def validate(self) -> None:
        self._check_stride()

    @property
    def out_hw(self) -> Tuple[int, int]:
        return (1, 1)

    @property
    def out_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.c_out)

    @classmethod
    def entry_fields(cls, entry: Mapping[str, Any], shape: Dims, low: Optional[Dims]) -> Dict[str, Any]:
        """A head entry names its output width ``classes``."""
        fields = super().entry_fields(entry, shape, low)
        if "classes" in fields:
            fields["c_out"] = fields.pop("classes")
        return fields

    def macs(self) -> int:
        return self.c_in * self.c_out * self.batch

    def params(self) -> int:
        return self.c_in * self.c_out + self.c_out

    def _tag(self) -> str:
        return "avg"

    def _key_parts(self) -> List[str]:
        return [self.family, self._tag(), self._shape_part()]


@register_family("gap", roles=("fixed",), torch=f"{_TORCH}:build_gap")
@dataclasses.dataclass(frozen=True)
class GlobalAvgPool(OpSpec):
    """Global average pool to a 1x1 map, channels kept (MobileNetV3's pool before its 1x1 feature mix)."""

    def validate(self) -> None:
        if self.stride != 1:
            self._fail("stride", "gap has no stride; use 1")
        if self.c_out != self.c_in:
            self._fail("c_out", f"gap keeps the {self.c_in} channels")

    @property
    def out_hw(self) -> Tuple[int, int]:
        return (1, 1)

    def macs(self) -> int:
        return 0

    def params(self) -> int:
        return 0

    def _tag(self) -> str:
        return "avg"

    def _key_parts(self) -> List[str]:
        return [self.family, self._tag(), self._shape_part()]


@dataclasses.dataclass(frozen=True)
class _TwoInputHead(OpSpec):
    """A decoder fed by the deep features (c_in, h, w) and a low-level tensor (c_low, h_low, w_low)."""

    c_low: int = 1
    h_low: int = 1
    w_low: int = 1
    mid: int = 128
    upsample: int = 8

    def _check_common(self, ratio: int) -> None:
        for f in ("c_low", "h_low", "w_low", "mid", "upsample"):
            self._check_int(f, positive=True)
        if self.stride != 1:
            self._fail("stride", f"{self.family} has no stride; use 1")
        if (self.h * ratio, self.w * ratio) != (self.h_low, self.w_low):
            self._fail(
                "h_low",
                f"low-level input {self.h_low}x{self.w_low} must be {ratio}x the deep input {self.h}x{self.w}",
            )

    @property
    def input_shapes(self) -> List[Tuple[int, ...]]:
        return [self.in_shape, (self.batch, self.c_low, self.h_low, self.w_low)]

    @property
    def out_hw(self) -> Tuple[int, int]:
        return self.h_low * self.upsample, self.w_low * self.upsample

    @classmethod
    def entry_fields(cls, entry: Mapping[str, Any], shape: Dims, low: Optional[Dims]) -> Dict[str, Any]:
        """A decoder entry: ``classes`` is c_out, ``low_level_layer`` says where ``low`` comes from."""
        if low is None:
            raise ValueError(f"{cls.family} needs the low-level input's shape")
        fields = {k: v for k, v in super().entry_fields(entry, shape, low).items() if k != "low_level_layer"}
        fields["c_out"] = fields.pop("classes")
        fields["c_low"], fields["h_low"], fields["w_low"] = low
        return fields

    def _shape_part(self) -> str:
        return f"c{self.c_in}x{self.h}x{self.w}+c{self.c_low}x{self.h_low}x{self.w_low}->c{self.c_out}"

    def _key_parts(self) -> List[str]:
        return [self.family, self._tag(), self._shape_part()]


@register_family("lr_aspp", roles=("decoder",), inputs=2, torch=f"{_TORCH}:build_lr_aspp")
@dataclasses.dataclass(frozen=True)
class LRASPP(_TwoInputHead):
    """SqueezeNAS's LR-ASPP decoder (MobileNetV3 style); ``c_out`` is the number of classes.

    t1 = 1x1 conv-BN-ReLU(x -> mid); t2 = avgpool(pool_kernel, pool_stride)(x) -> 1x1 conv+bias
    -> sigmoid -> bilinear to t1; t3 = bilinear x2 (t1 * t2) -> 1x1 conv+bias (mid -> classes);
    t4 = 1x1 conv+bias (low -> classes); out = bilinear x upsample (t3 + t4).
    """

    pool_kernel: Tuple[int, int] = (49, 49)
    pool_stride: Tuple[int, int] = (16, 20)

    @classmethod
    def entry_fields(cls, entry: Mapping[str, Any], shape: Dims, low: Optional[Dims]) -> Dict[str, Any]:
        """The pool window may be one number, and shrinks to fit inputs smaller than it."""
        fields = super().entry_fields(entry, shape, low)
        _, h, w = shape
        for f in ("pool_kernel", "pool_stride"):
            if isinstance(fields.get(f), int):
                fields[f] = (fields[f], fields[f])
        kh, kw = fields.get("pool_kernel", LRASPP.pool_kernel)
        fields["pool_kernel"] = (min(kh, h), min(kw, w))
        return fields

    def validate(self) -> None:
        self._check_common(2)
        for f in ("pool_kernel", "pool_stride"):
            v = getattr(self, f)
            if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, int) and i > 0 for i in v)):
                self._fail(f, "must be two positive integers")
        kh, kw = self.pool_kernel
        if kh > self.h or kw > self.w:
            self._fail("pool_kernel", f"larger than the {self.h}x{self.w} input")

    @property
    def pooled_hw(self) -> Tuple[int, int]:
        (kh, kw), (sh, sw) = self.pool_kernel, self.pool_stride
        return (self.h - kh) // sh + 1, (self.w - kw) // sw + 1

    def macs(self) -> int:
        ph, pw = self.pooled_hw
        hw, m, n = self.h * self.w, self.mid, self.c_out
        total = hw * m * self.c_in + ph * pw * m * self.c_in
        total += self.h_low * self.w_low * (n * m + n * self.c_low)
        return total * self.batch

    def params(self) -> int:
        m, n = self.mid, self.c_out
        return (self.c_in * m + 2 * m) + (self.c_in * m + m) + (m * n + n) + (self.c_low * n + n)

    def _tag(self) -> str:
        (kh, kw), (sh, sw) = self.pool_kernel, self.pool_stride
        return f"m{self.mid}_p{kh}x{kw}s{sh}x{sw}_u{self.upsample}"


@register_family("aspp_dw", roles=("decoder",), inputs=2, torch=f"{_TORCH}:build_aspp_dw")
@dataclasses.dataclass(frozen=True)
class DepthwiseASPP(_TwoInputHead):
    """SqueezeNAS-XLarge's depthwise ASPP decoder; ``c_out`` is the number of classes.

    Branches on x: 1x1 conv-BN-ReLU to mid; three 3x3 conv-BN-ReLU with groups=mid at ``rates``;
    image pool (avg to 1x1, nearest up, concatenated raw). Concat (4*mid + c_in) -> 1x1 conv-BN-ReLU
    to mid -> bilinear x4; low-level 1x1 conv+bias keeping its channels; concat -> 3x3 depthwise
    conv-BN-ReLU -> 1x1 conv+bias to classes -> bilinear x upsample.
    """

    rates: Tuple[int, ...] = (6, 12, 18)
    upsample: int = 4

    def validate(self) -> None:
        self._check_common(4)
        if not (isinstance(self.rates, tuple) and self.rates and all(isinstance(r, int) and r > 0 for r in self.rates)):
            self._fail("rates", "must be a list of positive integers")
        if self.c_in % self.mid:
            self._fail("mid", f"must divide c_in={self.c_in} (the atrous branches are grouped by mid)")

    @property
    def cat_channels(self) -> int:
        return (1 + len(self.rates)) * self.mid + self.c_in

    def macs(self) -> int:
        hw, m, c = self.h * self.w, self.mid, self.c_in
        lw, cl, n = self.h_low * self.w_low, self.c_low, self.c_out
        total = hw * m * c + len(self.rates) * hw * m * (c // m) * 9 + hw * m * self.cat_channels
        total += lw * cl * cl + lw * (m + cl) * 9 + lw * n * (m + cl)
        return total * self.batch

    def params(self) -> int:
        m, c, cl, n = self.mid, self.c_in, self.c_low, self.c_out
        total = (c * m + 2 * m) + len(self.rates) * ((c // m) * 9 * m + 2 * m)
        total += self.cat_channels * m + 2 * m
        total += cl * cl + cl
        total += (m + cl) * 9 + 2 * (m + cl)
        total += (m + cl) * n + n
        return total

    def _tag(self) -> str:
        return f"m{self.mid}_r{'-'.join(map(str, self.rates))}_u{self.upsample}"
