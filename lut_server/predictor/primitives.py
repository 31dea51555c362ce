"""An op spec as the kernels eager PyTorch runs for it (convolutions and element-wise passes).

A LUT entry times a whole block, but its cost is the sum of its kernels': dense and depthwise
convolutions bound by arithmetic or memory, element-wise passes (batch norm, activations,
residual adds, SE scaling, shuffles, concatenations, resizes) bound by memory, and a fixed
launch overhead per kernel. Counting them per kind is what lets a linear prior with a handful
of coefficients fit a space from a few dozen measured ops. Sizes are float32 elements; the
counts follow ``lutcore.torch`` (eval mode, batch norm not folded).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Tuple

from lut_server.predictor.errors import PredictorError
from lutcore.ops import (
    LRASPP,
    Conv,
    DepthwiseASPP,
    DilConv,
    GlobalAvgPool,
    InvertedResidual,
    OpSpec,
    Pool,
    PoolFC,
    ReluConvBN,
    SepConv,
    Skip,
)
from lutcore.ops.cellops import Concat, NodeAdd, Upsample

# The kinds a kernel can be; ``features.KIND_COLUMNS`` turns them into model columns.
POINTWISE = "pointwise"  # 1x1 convolution (grouped or not) and linear layers
DEPTHWISE = "depthwise"  # kxk convolution with one group per channel
DENSE = "dense"  # kxk convolution, k > 1, not depthwise
ELEMENTWISE = "elementwise"  # batch norm, activations, adds, products, pools, copies, resizes
KINDS = (POINTWISE, DEPTHWISE, DENSE, ELEMENTWISE)


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One kernel launch: multiply-accumulates and float32 elements read and written."""

    kind: str
    macs: int
    elems_in: int
    elems_out: int
    weights: int = 0
    act: str = ""  # the activation an element-wise pass computes ("" for none, BN, adds, copies)
    grouped: bool = False  # a convolution split into groups (not depthwise): runs as several small ones


def conv(c_in: int, c_out: int, hw_in: int, hw_out: int, k: int = 1, groups: int = 1) -> Kernel:
    """A conv2d as one kernel: depthwise when every group holds one input and one output channel."""
    if k == 1:
        kind = POINTWISE
    elif groups > 1 and groups == c_in == c_out:
        kind = DEPTHWISE
    else:
        kind = DENSE
    w = c_out * (c_in // groups) * k * k
    return Kernel(kind, hw_out * w, c_in * hw_in, c_out * hw_out, w, grouped=groups > 1 and kind != DEPTHWISE)


def conv_kernels(c_in: int, c_out: int, hw_in: int, hw_out: int, k: int = 1, groups: int = 1) -> List[Kernel]:
    """A conv2d as the kernels it runs. A grouped kxk conv that is not depthwise (a few channels per
    group: no depthwise kernel takes it, and its groups are too thin for the direct dense one) runs
    as im2col and a GEMM: first every output pixel's ``k * k * c_in`` inputs are copied out (an
    element-wise pass writing ``k * k`` times the output positions' input), then multiplied. The GEMM
    is not flagged ``grouped``: that column prices inverted residuals' 2-group 1x1 convs, and a measured
    decoder's 160-group GEMMs bent it for them (planner 25%: 76.1% -> 73.4% of ops within +-10%)."""
    c = conv(c_in, c_out, hw_in, hw_out, k, groups)
    if not (c.kind == DENSE and c.grouped):
        return [c]
    cols = c_in * k * k * hw_out
    return [Kernel(ELEMENTWISE, 0, c_in * hw_in, cols), dataclasses.replace(c, elems_in=cols, grouped=False)]


def elementwise(elems: int, reads: int = 1) -> Kernel:
    """A memory-bound pass over ``elems`` output elements that reads ``reads`` tensors of that size."""
    return Kernel(ELEMENTWISE, 0, reads * elems, elems)


def bilinear(channels: int, hw_in: int, hw_out: int) -> Kernel:
    """A bilinear resize: each output element reads its 4 nearest inputs (a copy reads one)."""
    return Kernel(ELEMENTWISE, 0, 4 * channels * hw_out, channels * hw_out)


def _act(name: str, elems: int) -> List[Kernel]:
    return [] if name == "none" else [Kernel(ELEMENTWISE, 0, elems, elems, act=name)]


def _conv_bn_act(c_in: int, c_out: int, hw_in: int, hw_out: int, k: int = 1, groups: int = 1,
                 act: str = "relu", bn: bool = True) -> List[Kernel]:
    out = conv_kernels(c_in, c_out, hw_in, hw_out, k, groups)
    if bn:
        out.append(elementwise(c_out * hw_out))
    return out + _act(act, c_out * hw_out)


def _ir(s: InvertedResidual) -> List[Kernel]:
    hw, (ho, wo) = s.h * s.w, s.out_hw
    hwo, m = ho * wo, s.hidden
    ks: List[Kernel] = []
    if s.pw_expand:
        ks += _conv_bn_act(s.c_in, m, hw, hw, 1, s.groups, s.act)
        if s.shuffle:
            ks.append(elementwise(m * hw))
    ks += _conv_bn_act(m, m, hw, hwo, s.kernel, m, s.act)
    if s.se:
        e = s.se_hidden
        mbv3 = s.se_style == "mbv3"  # as lutcore.torch: ReLU inside and a hard-sigmoid gate, else act and sigmoid
        inner = "relu" if mbv3 or s.act == "none" else s.act
        ks += [Kernel(ELEMENTWISE, 0, m * hwo, m), conv(m, e, 1, 1), *_act(inner, e), conv(e, m, 1, 1),
               *_act("hsigmoid" if mbv3 else "sigmoid", m), elementwise(m * hwo, 2)]
    ks += _conv_bn_act(m, s.c_out, hwo, hwo, 1, s.groups, "none")
    if s.residual:
        ks.append(elementwise(s.c_out * hwo, 2))
    return ks


def _skip(s: Skip) -> List[Kernel]:
    hw, (ho, wo) = s.h * s.w, s.out_hw
    hwo = ho * wo
    if s.mode == "identity":
        return []
    if s.mode == "factorized_reduce":
        half = s.c_out // 2
        return [elementwise(s.c_in * hw), elementwise(s.c_in * hw),  # relu, the shifted view made contiguous
                *_conv_bn_act(s.c_in, half, hw, hwo, act="none"),
                *_conv_bn_act(s.c_in, s.c_out - half, hw, hwo, act="none"), elementwise(s.c_out * hwo)]
    if s.mode == "relu_conv_bn":
        return [elementwise(s.c_in * hw), *_conv_bn_act(s.c_in, s.c_out, hw, hwo, act="none")]
    return _conv_bn_act(s.c_in, s.c_out, hw, hwo)


def _conv(s: Conv) -> List[Kernel]:
    ho, wo = s.out_hw
    ks = conv_kernels(s.c_in, s.c_out, s.h * s.w, ho * wo, s.kernel, s.groups)
    if s.bias and not s.bn:
        ks.append(elementwise(s.c_out * ho * wo))
    if s.bn:
        ks.append(elementwise(s.c_out * ho * wo))
    return ks + _act(s.act, s.c_out * ho * wo)


def _pool_fc(s: PoolFC) -> List[Kernel]:
    return [Kernel(ELEMENTWISE, 0, s.c_in * s.h * s.w, s.c_in), conv(s.c_in, s.c_out, 1, 1)]


def _lr_aspp(s: LRASPP) -> List[Kernel]:
    hw, low = s.h * s.w, s.h_low * s.w_low
    ph, pw = s.pooled_hw
    oh, ow = s.out_hw
    return [*_conv_bn_act(s.c_in, s.mid, hw, hw), Kernel(ELEMENTWISE, 0, s.c_in * hw, s.c_in * ph * pw),
            conv(s.c_in, s.mid, ph * pw, ph * pw), elementwise(s.mid * ph * pw), bilinear(s.mid, ph * pw, hw),
            elementwise(s.mid * hw, 2), bilinear(s.mid, hw, low), conv(s.mid, s.c_out, low, low),
            conv(s.c_low, s.c_out, low, low), elementwise(s.c_out * low, 2), bilinear(s.c_out, low, oh * ow)]


def _aspp_dw(s: DepthwiseASPP) -> List[Kernel]:
    hw, low, m = s.h * s.w, s.h_low * s.w_low, s.mid
    oh, ow = s.out_hw
    c = m + s.c_low
    ks = [Kernel(ELEMENTWISE, 0, s.c_in * hw, s.c_in), elementwise(s.c_in * hw), *_conv_bn_act(s.c_in, m, hw, hw)]
    for _ in s.rates:  # grouped by mid: c_in/mid channels per group
        ks += _conv_bn_act(s.c_in, m, hw, hw, 3, m)
    ks += [elementwise(s.cat_channels * hw), *_conv_bn_act(s.cat_channels, m, hw, hw), bilinear(m, hw, low),
           conv(s.c_low, s.c_low, low, low), elementwise(c * low), *_conv_bn_act(c, c, low, low, 3, c),
           conv(c, s.c_out, low, low), bilinear(s.c_out, low, oh * ow)]
    return ks


def _sep_conv(s: SepConv) -> List[Kernel]:
    hw, (ho, wo) = s.h * s.w, s.out_hw
    hwo, c = ho * wo, s.c_in
    return [elementwise(c * hw), conv(c, c, hw, hwo, s.kernel, c), conv(c, c, hwo, hwo), elementwise(c * hwo),
            elementwise(c * hwo), conv(c, c, hwo, hwo, s.kernel, c), conv(c, s.c_out, hwo, hwo),
            elementwise(s.c_out * hwo)]


def _dil_conv(s: DilConv) -> List[Kernel]:
    hw, (ho, wo) = s.h * s.w, s.out_hw
    c = s.c_in
    return [elementwise(c * hw), conv(c, c, hw, ho * wo, s.kernel, c), conv(c, s.c_out, ho * wo, ho * wo),
            elementwise(s.c_out * ho * wo)]


def _rcb(s: ReluConvBN) -> List[Kernel]:
    hw, (ho, wo) = s.h * s.w, s.out_hw
    ks: List[Kernel] = []
    for r in range(s.repeat):
        c_in, hw_in = (s.c_in, hw) if r == 0 else (s.c_out, ho * wo)
        ks += [elementwise(c_in * hw_in), conv(c_in, s.c_out, hw_in, ho * wo, s.kernel),
               elementwise(s.c_out * ho * wo)]
    return ks


def _gap(s: GlobalAvgPool) -> List[Kernel]:
    return [Kernel(ELEMENTWISE, 0, s.c_in * s.h * s.w, s.c_in)]


def _pool(s: Pool) -> List[Kernel]:
    ho, wo = s.out_hw
    return [Kernel(ELEMENTWISE, 0, s.c_in * s.h * s.w, s.c_out * ho * wo)]


def _add(s: NodeAdd) -> List[Kernel]:
    return [elementwise(s.c_out * s.h * s.w, reads=2)]


def _concat(s: Concat) -> List[Kernel]:
    return [elementwise(s.c_out * s.h * s.w)]


def _upsample(s: Upsample) -> List[Kernel]:
    ho, wo = s.out_hw
    return [bilinear(s.c_out, s.h * s.w, ho * wo)]


_BY_FAMILY: Dict[str, Callable[..., List[Kernel]]] = {
    "ir": _ir, "skip": _skip, "conv": _conv, "pool_fc": _pool_fc, "lr_aspp": _lr_aspp, "aspp_dw": _aspp_dw,
    "sep_conv": _sep_conv, "dil_conv": _dil_conv, "rcb": _rcb, "pool": _pool,
    "gap": _gap, "add": _add, "concat": _concat, "upsample": _upsample,
}


def predictable(spec: OpSpec) -> bool:
    """Whether the predictor models this op's family (a cell space's other ops stay unpredicted)."""
    return spec.family in _BY_FAMILY


def kernels(spec: OpSpec) -> List[Kernel]:
    """The kernels of one op at batch 1, scaled by the batch (a batch multiplies every tensor)."""
    try:
        fn = _BY_FAMILY[spec.family]
    except KeyError:
        raise PredictorError(f"the predictor knows no op family {spec.family!r}") from None
    ks = fn(spec)
    if spec.batch == 1:
        return ks
    b = spec.batch
    return [Kernel(k.kind, k.macs * b, k.elems_in * b, k.elems_out * b, k.weights) for k in ks]


# Activations that evaluate an exponential per element (swish = x * sigmoid(x)): several times the
# arithmetic of a relu, so on a CPU they are not bound by memory like the other element-wise passes.
TRANSCENDENTAL = ("swish", "sigmoid")
# Working sets past which a kernel streams from a slower level of memory: a typical per-core L2 and
# a share of a shared L3. Bytes beyond them get their own (non-negative) cost per byte in the prior.
SPILL_BYTES = (1 << 20, 1 << 23)
MEASURES = ("macs", "bytes", "count", "exp_elems", "grouped_macs", *(f"bytes_past_{b >> 20}MiB" for b in SPILL_BYTES))


def totals(spec: OpSpec) -> Dict[Tuple[str, str], float]:
    """(kind, measure) -> sum over the op's kernels; measures (``MEASURES``): macs, bytes, count, elements
    through a transcendental activation, and each kernel's bytes beyond each of ``SPILL_BYTES``."""
    out: Dict[Tuple[str, str], float] = {(k, m): 0.0 for k in KINDS for m in MEASURES}
    for k in kernels(spec):
        nbytes = 4.0 * (k.elems_in + k.elems_out + k.weights)
        out[(k.kind, "macs")] += k.macs
        out[(k.kind, "bytes")] += nbytes
        out[(k.kind, "count")] += 1
        out[(k.kind, "exp_elems")] += k.elems_out if k.act in TRANSCENDENTAL else 0
        out[(k.kind, "grouped_macs")] += k.macs if k.grouped else 0
        for b, m in zip(SPILL_BYTES, MEASURES[5:]):
            out[(k.kind, m)] += max(0.0, nbytes - b)
    return out
