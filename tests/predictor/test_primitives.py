"""The kernel decomposition agrees with the op specs' own cost accounting."""

from __future__ import annotations

import pytest

from lut_server.predictor.primitives import DEPTHWISE, ELEMENTWISE, POINTWISE, kernels, totals
from lutcore.ops import InvertedResidual, Skip
from lutcore.spaces import get_space, space_names


@pytest.mark.parametrize("space", space_names())
def test_kernel_macs_add_up_to_the_spec_macs(space: str) -> None:
    for spec in get_space(space).unique_ops().values():
        assert sum(k.macs for k in kernels(spec)) == spec.macs(), spec.key


def test_inverted_residual_with_se_and_residual() -> None:
    s = InvertedResidual(c_in=32, h=16, w=16, c_out=32, kernel=5, expansion=4, se=0.25, act="swish")
    ks = kernels(s)
    kinds = [k.kind for k in ks]
    # expand conv+BN+act, depthwise+BN+act, SE (pool, fc, act, fc, sigmoid, scale), project+BN, residual add
    assert kinds.count(POINTWISE) == 4 and kinds.count(DEPTHWISE) == 1
    assert len(ks) == 3 + 3 + 6 + 2 + 1
    assert ks[-1].kind == ELEMENTWISE and ks[-1].elems_in == 2 * 32 * 16 * 16


def test_batch_scales_work_but_not_launches() -> None:
    one, four = InvertedResidual(c_in=16, h=8, w=8, c_out=24, stride=2), InvertedResidual(
        c_in=16, h=8, w=8, c_out=24, stride=2, batch=4)
    t1, t4 = totals(one), totals(four)
    assert t4[(POINTWISE, "macs")] == 4 * t1[(POINTWISE, "macs")]
    assert t4[(POINTWISE, "count")] == t1[(POINTWISE, "count")]


def test_identity_skip_has_no_kernels() -> None:
    assert kernels(Skip(c_in=8, h=4, w=4, c_out=8)) == []


def test_an_unknown_family_is_a_clear_error() -> None:
    import dataclasses

    from lut_server.predictor.errors import PredictorError
    from lutcore.ops import OpSpec

    @dataclasses.dataclass(frozen=True)
    class Mystery(OpSpec):
        family = "mystery"

    with pytest.raises(PredictorError, match="mystery"):
        kernels(Mystery(c_in=4, h=4, w=4, c_out=4))


def test_factorized_reduce_copies_its_shifted_view() -> None:
    """torch runs x[:, :, 1:, 1:] through a contiguous copy before the second conv (profiled: aten::copy_)."""
    s = Skip(c_in=24, h=32, w=32, c_out=32, stride=2, mode="factorized_reduce")
    ew = [k for k in kernels(s) if k.kind == ELEMENTWISE]
    assert len(ew) == 5  # relu, the copy, two batch norms, the concatenation
    assert ew[0].elems_in == ew[1].elems_in == 24 * 32 * 32


def test_a_thin_grouped_conv_runs_as_im2col_and_gemm_a_depthwise_one_directly() -> None:
    """A 3x3 conv with 2 input channels per group (the ASPP decoder's branches) is no depthwise conv:
    it copies k*k*c_in elements per output pixel out first, then multiplies them as a grouped GEMM."""
    from lut_server.predictor.primitives import DENSE, conv_kernels

    im2col, gemm = conv_kernels(320, 160, 16 * 32, 16 * 32, k=3, groups=160)
    assert im2col.kind == ELEMENTWISE and im2col.elems_out == 320 * 9 * 16 * 32
    assert gemm.kind == DENSE and gemm.macs == 160 * 2 * 9 * 16 * 32
    assert not gemm.grouped  # not priced with the 2-group 1x1 convs of inverted residuals
    assert gemm.elems_in == im2col.elems_out
    (dw,) = conv_kernels(320, 320, 16 * 32, 16 * 32, k=3, groups=320)
    assert dw.kind == DEPTHWISE and dw.elems_in == 320 * 16 * 32


def test_a_cell_upsampling_is_priced_as_the_decoders_bilinear_resizes() -> None:
    from lut_server.predictor.primitives import bilinear
    from lutcore.ops.cellops import Upsample

    s = Upsample(16, 12, 24, 16, factor=4)
    (k,) = kernels(s)
    assert k == bilinear(16, 12 * 24, 48 * 96)
    assert k.kind == ELEMENTWISE and k.elems_in == 4 * k.elems_out == 4 * 16 * 48 * 96
