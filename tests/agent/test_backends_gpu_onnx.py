"""Typed ONNX (fp16, int8 Q/DQ) run for real in ONNX Runtime; in-context attribution of a real network export."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lutcore.ops import LRASPP, Conv, InvertedResidual
from lutcore.spaces import get_arch
from profiler_agent.backends import typed_onnx
from profiler_agent.backends.onnx_export import export_network, export_op
from profiler_agent.backends.trt_profile import attribute, network_scopes, scopes_of
from profiler_agent.timing import TimingProtocol

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
FAST = TimingProtocol(ci=0.05, max_time_s=0.2, min_samples=5, max_warmup_s=0.05, warmup_s=0.0)
ARCH = ("squeezenas-small:random:3", "64x128")


def _run(model: bytes, feeds):
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("spec", [
    Conv(c_in=16, h=14, w=14, c_out=32),
    InvertedResidual(c_in=16, h=8, w=8, c_out=16, expansion=3, se=0.25, act="hswish"),
])
def test_typed_exports_run_and_approximate_fp32(spec):
    fp32, inputs = export_op(spec)
    x = inputs[0].numpy()
    ref = _run(fp32, {"x": x})
    half = typed_onnx.typed(fp32, "fp16")
    assert typed_onnx.io_dtypes(half) == {"x": "float16", "y": "float16"}
    y16 = _run(half, {"x": x.astype(np.float16)})
    assert y16.dtype == np.float16 and np.abs(y16.astype(np.float32) - ref).max() < 2e-2 * max(1.0, np.abs(ref).max())
    q = typed_onnx.typed(fp32, "int8")
    assert typed_onnx.io_dtypes(q) == {"x": "int8", "y": "int8"}
    names = typed_onnx.node_names(q)
    assert sum(n.endswith("_DQ") for n in names) >= 2 * sum("Conv" in n for n in typed_onnx.node_names(fp32))
    step = typed_onnx.ACT_RANGE / 127
    y8 = _run(q, {"x": np.clip(np.round(x / step), -128, 127).astype(np.int8)})
    assert y8.dtype == np.int8
    err = np.abs(y8.astype(np.float32) * step - np.clip(ref, -typed_onnx.ACT_RANGE, typed_onnx.ACT_RANGE))
    assert err.mean() < 0.1  # fixed scales: close, not calibrated


def test_fp16_keeps_resize_scales_fp32():
    spec = LRASPP(c_in=16, h=4, w=8, c_out=4, c_low=8, h_low=8, w_low=16, mid=8, pool_kernel=(3, 3),
                  pool_stride=(2, 2), upsample=2)
    fp32, inputs = export_op(spec)
    half = typed_onnx.to_fp16(fp32)
    feeds = {n: t.numpy().astype(np.float16) for n, t in zip(("x", "low"), inputs)}
    ref = _run(fp32, {n: t.numpy() for n, t in zip(("x", "low"), inputs)})
    assert np.abs(_run(half, feeds).astype(np.float32) - ref).max() < 5e-2


def test_fused_and_foreign_layer_names_map_to_blocks():
    order = ["stem.0", "layers.0", "layers.1", "layers.2", "head.0", "decoder"]
    assert scopes_of("/layers.1/body/body.0/Conv + /layers.1/body/body.2/Relu", order) == ["layers.1"]
    foreign = "{ForeignNode[/layers.0/body/Conv.../layers.2/Add]}"
    assert scopes_of(foreign, order) == ["layers.0", "layers.1", "layers.2"]
    assert scopes_of("Reformatting CopyNode for Input Tensor 0 to /decoder/Resize", order) == ["decoder"]
    assert scopes_of("Identity_12", order) == []


@pytest.fixture(scope="module")
def network_export():
    arch = get_arch(*ARCH)
    return arch, export_network(arch)


def test_network_node_names_carry_block_scopes(network_export):
    arch, (onnx, _) = network_export
    order = [s for s, _ in network_scopes(arch)]
    compute = [n for n in typed_onnx.node_names(onnx) if n.endswith(("/Conv", "/Gemm", "/Resize", "/MatMul"))]
    assert compute and all(scopes_of(n, order) for n in compute)
    seen = {s for n in compute for s in scopes_of(n, order)}
    assert seen == set(order)  # every deployed block has a conv (or resize) the profiler can name
    shares = attribute({compute[0]: 1.0, "Identity_0": 0.5}, arch)
    assert shares["unattributed_ms"] == 0.5 and sum(b["ms"] for b in shares["blocks"]) == 1.0


def test_whole_network_in_context_and_not_reexported_when_cached(tmp_path, monkeypatch, network_export):
    from tests.agent.gpu_fakes import FakeGpu
    from tests.agent.test_backends_gpu import _backend

    arch, exported = network_export
    calls = []

    def counting_export(a, *args):
        calls.append(a)
        return exported

    monkeypatch.setattr("profiler_agent.backends.onnx_export.export_network", counting_export)
    gpu = FakeGpu()
    b, _, _ = _backend(tmp_path, monkeypatch, "10.3.0", "fp16", gpu=gpu)
    r = b.time_network(arch, FAST)
    assert len(calls) == 1 and r.env["graphs"]
    ctx = r.env["in_context"]
    keys = [k for _, k in network_scopes(arch)]
    assert [blk["op"] for blk in ctx["blocks"]] == keys
    assert all(blk["ms"] > 0 for blk in ctx["blocks"])
    assert sum(blk["ms"] for blk in ctx["blocks"]) + ctx["unattributed_ms"] == pytest.approx(ctx["profiled_total_ms"])
    assert ctx["profiled_total_ms"] == pytest.approx(r.stats.median_ms, rel=0.05)
    b.time_network(arch, FAST)
    assert len(calls) == 1 and b.builds == 1
    b.close()
    b2, _, _ = _backend(tmp_path, monkeypatch, "10.3.0", "fp16", gpu=gpu)
    b2.time_network(arch, FAST)
    assert len(calls) == 1 and (b2.builds, b2.engine_hits) == (0, 1)  # the engine on disk: no export
    assert "tensorrt" in sys.modules
