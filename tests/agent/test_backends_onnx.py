"""ONNX export of every op family, checked numerically against torch in ONNX Runtime (CPU)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lutcore.ops import LRASPP, Conv, DepthwiseASPP, GlobalAvgPool, InvertedResidual, PoolFC, Skip, families
from lutcore.ops.cellops import Concat, DilConv, NodeAdd, Pool, ReluConvBN, SepConv, Upsample
from lutcore.torch import build_op, example_inputs
from profiler_agent.backends.onnx_export import OPSET, export_module, export_op

SPECS = {
    "ir-relu-s1-residual": InvertedResidual(c_in=8, h=8, w=12, c_out=8, kernel=3, expansion=3),
    "ir-relu6-s2-dil": InvertedResidual(c_in=8, h=8, w=12, c_out=16, stride=2, kernel=5, dilation=2, act="relu6"),
    "ir-swish-se": InvertedResidual(c_in=8, h=8, w=8, c_out=8, kernel=3, expansion=4, se=0.25, act="swish"),
    "ir-hswish-groups-shuffle": InvertedResidual(
        c_in=8, h=8, w=8, c_out=16, kernel=7, expansion=2, groups=2, shuffle=True, act="hswish"
    ),
    "ir-hswish-se-mbv3-odd": InvertedResidual(  # OFA's SE: ReLU inside, hard-sigmoid gate; 9x9 -> 5x5
        c_in=8, h=9, w=9, c_out=16, stride=2, kernel=5, expansion=3, se=0.25, se_style="mbv3", act="hswish"
    ),
    "ir-nopw": InvertedResidual(c_in=8, h=8, w=8, c_out=8, kernel=3, expansion=1, pw_expand=False, act="none"),
    "skip-factorized-reduce": Skip(c_in=8, h=8, w=8, c_out=16, stride=2, mode="factorized_reduce"),
    "skip-relu-conv-bn": Skip(c_in=8, h=8, w=8, c_out=12, mode="relu_conv_bn"),
    "skip-conv-bn-relu": Skip(c_in=8, h=8, w=8, c_out=12, stride=2, mode="conv_bn_relu"),
    "conv-stem": Conv(c_in=3, h=16, w=16, c_out=8, stride=2, kernel=3),
    "conv-bias-grouped": Conv(c_in=8, h=8, w=8, c_out=8, kernel=1, groups=2, bn=False, bias=True, act="none"),
    "pool-fc": PoolFC(c_in=16, h=4, w=4, c_out=10),
    "gap": GlobalAvgPool(c_in=16, h=5, w=5, c_out=16),
    "lr-aspp": LRASPP(
        c_in=16, h=4, w=8, c_out=5, c_low=8, h_low=8, w_low=16, mid=16, upsample=4,
        pool_kernel=(3, 5), pool_stride=(2, 3),
    ),
    "sep-conv-s2": SepConv(c_in=8, h=8, w=8, c_out=8, stride=2, kernel=5),
    "dil-conv": DilConv(c_in=8, h=8, w=8, c_out=8, kernel=3),
    "rcb-twice": ReluConvBN(c_in=8, h=8, w=8, c_out=8, kernel=3, repeat=2),
    "pool-max": Pool(c_in=8, h=8, w=8, c_out=8, mode="max"),
    "pool-avg-s2": Pool(c_in=8, h=8, w=8, c_out=8, stride=2, mode="avg"),
    "node-add": NodeAdd(c_in=8, h=8, w=8, c_out=8),
    "concat-3": Concat(c_in=12, h=8, w=8, c_out=12, parts=3),
    "upsample-x4": Upsample(c_in=8, h=3, w=5, c_out=8, factor=4),
    "aspp-dw": DepthwiseASPP(c_in=16, h=4, w=4, c_out=5, c_low=8, h_low=16, w_low=16, mid=8, rates=(1, 2), upsample=2),
}


def test_every_family_is_covered():
    assert {s.family for s in SPECS.values()} == set(families())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_export_matches_torch_in_onnxruntime(name):
    spec = SPECS[name]
    torch.manual_seed(0)
    module, inputs = build_op(spec), example_inputs(spec)
    blob = export_module(module, inputs)
    model = onnx.load_from_string(blob)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == OPSET
    names = [i.name for i in model.graph.input]
    assert names == (["x", "low"] if len(inputs) == 2 else ["x"])
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == list(spec.in_shape)  # static shape, batch 1
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    with torch.no_grad():
        ref = module(*inputs).numpy()
    assert out.shape == ref.shape == tuple(spec.out_shape)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_export_op_returns_the_inputs_it_traced():
    blob, inputs = export_op(SPECS["lr-aspp"])
    assert len(inputs) == 2 and isinstance(blob, bytes) and len(blob) > 100
