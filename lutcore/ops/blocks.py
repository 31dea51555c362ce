"""Searchable op families: the inverted residual block and the skip."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Tuple

from lutcore.ops.base import ACTIVATIONS, KERNELS, OpSpec, conv_out, fmt_num
from lutcore.ops.registry import register_family

_TORCH = "lutcore.torch.modules"

SKIP_MODES = ("identity", "factorized_reduce", "relu_conv_bn", "conv_bn_relu")
SE_STYLES = ("tfnas", "mbv3")
MAX_RATIO = 1024  # expansion and SE ratios: beyond it a width overflows before any size bound sees it


def make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, at least ``divisor``, not below 90% of v."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


@register_family("ir", roles=("block", "fixed"), torch=f"{_TORCH}:build_ir")
@dataclasses.dataclass(frozen=True)
class InvertedResidual(OpSpec):
    """1x1 (groups) -> BN -> act -> [shuffle] -> kxk depthwise -> BN -> act -> [SE] -> 1x1 (groups) -> BN.

    ``expansion`` sets the hidden width ``round(c_in * e)``, or ``mid`` sets it in channels (width-elastic
    spaces); a ``mid`` that is a multiple of ``c_in`` becomes that expansion, so one op has one key (a
    width-elastic space shares its full-width entries with the fixed space). ``se`` sizes the SE, 0 for none, as
    ``se_style`` says: ``tfnas``, a multiple of ``c_in`` (TF-NAS's "SE expansion"), the block's
    activation inside and a sigmoid gate; ``mbv3``, ``make_divisible(floor(hidden * se), 8)`` (OFA's
    MobileNetV3 has se=0.25), ReLU inside and a hard-sigmoid gate. ``pw_expand=False`` drops the
    expansion conv, which only MobileNetV2-style e=1 blocks do (SqueezeNAS keeps it).
    A residual is added when stride is 1 and the shape is kept.
    """

    kernel: int = 3
    dilation: int = 1
    expansion: float = 1
    groups: int = 1
    se: float = 0
    shuffle: bool = False
    act: str = "relu"
    pw_expand: bool = True
    se_style: str = "tfnas"
    mid: int = 0

    def __post_init__(self) -> None:
        m, c = self.mid, self.c_in
        whole = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (m, c))
        if whole and self.expansion == 1 and m % c == 0:  # canonical: the expansion that gives it
            object.__setattr__(self, "expansion", m // c)
            object.__setattr__(self, "mid", 0)
        super().__post_init__()

    @property
    def hidden(self) -> int:
        return self.mid or int(round(self.c_in * self.expansion))

    @property
    def se_hidden(self) -> int:
        if self.se_style == "mbv3":
            return make_divisible(int(self.hidden * self.se))
        return int(round(self.c_in * self.se))

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.c_in == self.c_out

    def validate(self) -> None:
        self._check_choice("kernel", KERNELS[1:])
        self._check_choice("dilation", (1, 2, 3, 4))
        self._check_choice("act", ACTIVATIONS)
        self._check_int("groups", positive=True)
        if isinstance(self.expansion, bool) or not isinstance(self.expansion, (int, float)) or not self.expansion > 0:
            self._fail("expansion", "must be a positive number")
        if not self.expansion <= MAX_RATIO:
            self._fail("expansion", f"must be at most {MAX_RATIO}")
        self._check_int("mid")
        if self.mid and self.expansion != 1:
            self._fail("mid", "sets the hidden width: give it or expansion, not both")
        if not 0 <= self.mid <= MAX_RATIO * self.c_in:
            self._fail("mid", f"must be 0 (from expansion) or 1..{MAX_RATIO * self.c_in} channels")
        if self.hidden < 1:
            self._fail("expansion", f"gives a hidden width of {self.hidden} channels for c_in={self.c_in} (below 1)")
        if isinstance(self.se, bool) or not isinstance(self.se, (int, float)) or self.se < 0:
            self._fail("se", "must be a number >= 0")
        if not self.se <= MAX_RATIO:  # also NaN: widths are computed from it below
            self._fail("se", f"must be at most {MAX_RATIO}")
        self._check_choice("se_style", SE_STYLES)
        if self.se_style != "tfnas" and not self.se:
            self._fail("se_style", "needs se > 0")
        if self.se and self.se_hidden < 1:
            self._fail("se", "gives an SE width below 1 channel")
        if not isinstance(self.shuffle, bool):
            self._fail("shuffle", "must be true or false")
        if not isinstance(self.pw_expand, bool):
            self._fail("pw_expand", "must be true or false")
        if not self.pw_expand:
            if self.hidden != self.c_in:
                self._fail("pw_expand", "may be false only when expansion is 1")
            if self.groups != 1:
                self._fail("pw_expand", "may be false only with groups 1")
        self._check_divides("groups", ("c_in", self.c_in), ("c_out", self.c_out), ("hidden", self.hidden))
        if self.shuffle and self.groups == 1:
            self._fail("shuffle", "needs groups > 1")

    @property
    def out_hw(self) -> Tuple[int, int]:
        return (
            conv_out(self.h, self.kernel, self.stride, self.dilation),
            conv_out(self.w, self.kernel, self.stride, self.dilation),
        )

    def macs(self) -> int:
        ho, wo = self.out_hw
        c, m, g = self.c_in, self.hidden, self.groups
        total = self.h * self.w * m * (c // g) if self.pw_expand else 0
        total += ho * wo * m * self.kernel * self.kernel
        total += 2 * m * self.se_hidden
        total += ho * wo * self.c_out * (m // g)
        return total * self.batch

    def params(self) -> int:
        c, m, g, o = self.c_in, self.hidden, self.groups, self.c_out
        total = (m * (c // g) + 2 * m) if self.pw_expand else 0
        total += m * self.kernel * self.kernel + 2 * m
        if self.se:
            s = self.se_hidden
            total += m * s + s + s * m + m
        total += o * (m // g) + 2 * o
        return total

    def _tag(self) -> str:
        width = f"m{self.mid}" if self.mid else f"e{fmt_num(self.expansion)}"
        tag = f"k{self.kernel}_d{self.dilation}_{width}_g{self.groups}"
        if self.se:
            tag += f"_se{fmt_num(self.se)}" + ("" if self.se_style == "tfnas" else self.se_style)
        if self.shuffle:
            tag += "_sh"
        if not self.pw_expand:
            tag += "_nopw"
        return tag

    def _key_parts(self) -> List[str]:
        return super()._key_parts() + [self.act]

    def to_dict(self) -> Dict[str, Any]:
        """Without the default ``se_style`` and ``mid``: every existing op's dict stays what older servers accept."""
        d = super().to_dict()
        if d["se_style"] == "tfnas":
            del d["se_style"]
        if not d["mid"]:
            del d["mid"]
        return d


@register_family("skip", roles=("block", "cell"), torch=f"{_TORCH}:build_skip")
@dataclasses.dataclass(frozen=True)
class Skip(OpSpec):
    """The "skip" candidate; ``mode`` says what it deploys as for this shape.

    identity (zero cost), factorized_reduce (ReLU, two 1x1 stride-2 conv-BN branches of c_out/2
    on x and x[:, :, 1:, 1:], concatenated), relu_conv_bn (ReLU -> 1x1 -> BN), or
    conv_bn_relu (FBNet's 1x1 conv-BN-ReLU with stride).
    """

    mode: str = "identity"

    def validate(self) -> None:
        self._check_choice("mode", SKIP_MODES)
        if self.mode == "identity" and (self.stride != 1 or self.c_in != self.c_out):
            self._fail("mode", "identity needs stride 1 and c_in == c_out")
        if self.mode == "factorized_reduce":
            if self.stride != 2:
                self._fail("stride", "factorized_reduce needs stride 2")
            if self.c_out % 2:
                self._fail("c_out", "factorized_reduce needs an even c_out")
            if self.h % 2 or self.w % 2:
                self._fail("h" if self.h % 2 else "w", "factorized_reduce needs an even input size")
        if self.mode == "relu_conv_bn" and self.stride != 1:
            self._fail("stride", "relu_conv_bn is the stride-1 reshaping skip")

    @property
    def out_hw(self) -> Tuple[int, int]:
        return conv_out(self.h, 1, self.stride), conv_out(self.w, 1, self.stride)

    @property
    def is_identity(self) -> bool:
        return self.mode == "identity"

    def macs(self) -> int:
        if self.mode == "identity":
            return 0
        ho, wo = self.out_hw
        return ho * wo * self.c_out * self.c_in * self.batch

    def params(self) -> int:
        if self.mode == "identity":
            return 0
        return self.c_out * self.c_in + 2 * self.c_out

    def _tag(self) -> str:
        return self.mode
