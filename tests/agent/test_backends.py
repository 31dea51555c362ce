"""Backends: registry, pytorch-cpu and onnxruntime for real, GPU backends where a GPU exists."""

from __future__ import annotations

import pytest
import torch

from lutcore.ops import Conv, InvertedResidual, Skip
from lutcore.spaces import get_arch
from profiler_agent.backends import (
    Backend,
    BackendUnavailable,
    available_backends,
    backend_names,
    get_backend,
)
from profiler_agent.backends.onnxrt import OnnxRuntimeBackend
from profiler_agent.backends.torch_common import TorchBackend
from profiler_agent.timing import TimingProtocol

FAST = TimingProtocol(ci=0.05, max_time_s=0.15, min_samples=6, max_warmup_s=0.05)
TINY = InvertedResidual(c_in=8, h=8, w=8, c_out=8, kernel=3, expansion=2)
SE_OP = InvertedResidual(c_in=8, h=8, w=8, c_out=8, kernel=3, expansion=4, se=0.25, act="swish")
BIG = Conv(c_in=64, h=56, w=56, c_out=64, kernel=3)  # 116 MMACs against TINY's 26 kMACs
GPU_BIG = Conv(c_in=256, h=128, w=128, c_out=256, kernel=3)  # 9.7 GMACs: far above a GPU's launch floor


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_registry_lists_every_backend_with_a_reason_or_none():
    av = available_backends()
    assert set(av) == set(backend_names()) == {"pytorch-cpu", "pytorch-cuda", "tensorrt", "onnxruntime"}
    assert av["pytorch-cpu"] is None and av["onnxruntime"] is None
    for name, reason in av.items():
        assert reason is None or (isinstance(reason, str) and reason), name
    if not torch.cuda.is_available():
        cuda_reason = av["pytorch-cuda"]
        assert cuda_reason is not None and "GPU" in cuda_reason
        with pytest.raises(BackendUnavailable, match="pytorch-cuda"):
            get_backend("pytorch-cuda")
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        get_backend("nope")


def test_pytorch_cpu_records_threads_in_its_target(restore_threads):
    b = get_backend("pytorch-cpu", threads=1)
    assert isinstance(b, Backend) and b.name == "pytorch-cpu" and b.precision == "fp32"
    assert torch.get_num_threads() == 1
    t = b.target("cpu-x86")
    assert t.settings == {"threads": "1"} and t.id == "cpu-x86/pytorch-cpu/fp32@threads=1"
    assert b.target("cpu-x86", {"power_mode": "maxn"}).id == "cpu-x86/pytorch-cpu/fp32@power_mode=maxn,threads=1"
    assert "torch" in b.versions()
    with pytest.raises(ValueError, match="precision"):
        get_backend("pytorch-cpu", precision="fp16")
    with pytest.raises(ValueError, match="threads"):
        get_backend("pytorch-cpu", threads=0)


def test_pytorch_cpu_times_an_op_and_refuses_identities(restore_threads):
    b = get_backend("pytorch-cpu", threads=1)
    r = b.time_op(TINY, FAST)
    assert r.stats.n >= 6 and len(r.samples) == r.stats.n
    assert r.stats.min_ms <= r.stats.median_ms <= r.stats.p90_ms
    with pytest.raises(ValueError, match="identity"):
        b.time_op(Skip(c_in=8, h=8, w=8, c_out=8, mode="identity"), FAST)


def _torch_reference(spec):
    """The op as lutcore builds it for torch, eval mode, with the weights seed 0 gives."""
    from lutcore.torch import build_op

    torch.manual_seed(0)
    return build_op(spec).eval()


@pytest.mark.parametrize("spec", [TINY, SE_OP], ids=["ir", "ir-se-swish"])
def test_pytorch_cpu_runs_what_torch_computes(spec, restore_threads):
    """What the backend times is the op itself: same weights, same numbers, eval mode (BN frozen)."""
    b = get_backend("pytorch-cpu", threads=1)
    assert isinstance(b, TorchBackend)
    torch.manual_seed(0)
    module, inputs = b.build_op(spec)
    assert not module.training and inputs[0].shape == tuple(spec.in_shape)
    with torch.no_grad():
        out = module(*inputs)
        ref = _torch_reference(spec)(*inputs)
    assert tuple(out.shape) == tuple(spec.out_shape)
    torch.testing.assert_close(out, ref)
    with torch.no_grad():
        trained = _torch_reference(spec).train()(*inputs)
    assert not torch.allclose(out, trained)  # the comparison can tell eval from training mode


def test_onnxruntime_runs_what_torch_computes():
    """The backend's own session (its graph optimizations, threads) gives torch's outputs, op and network."""
    from lutcore.torch import build_network, network_input
    from profiler_agent.backends.onnx_export import export_module, export_network, input_names

    b = get_backend("onnxruntime", threads=1)
    assert isinstance(b, OnnxRuntimeBackend)
    for spec in (TINY, SE_OP):
        module, x = _torch_reference(spec), torch.randn(spec.in_shape)
        (out,) = b.session(export_module(module, (x,))).run(None, {input_names(1)[0]: x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(out), module(x), rtol=1e-4, atol=1e-4)
    arch = get_arch("squeezenas-small:random:3", "64x128")
    torch.manual_seed(0)
    blob, (x,) = export_network(arch)
    torch.manual_seed(0)
    assert torch.equal(network_input(arch), x)
    net = build_network(arch).eval()
    (out,) = b.session(blob).run(None, {input_names(1)[0]: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), net(x), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ["pytorch-cpu", "onnxruntime"])
def test_a_bigger_op_and_a_bigger_network_are_slower(name, restore_threads):
    """Ordering, which a backend that times the wrong thing (or nothing) fails: about 4,500x the MACs of
    the tiny op, and the same network at 64x the pixels. The fastest samples are compared: a loaded CI
    machine only ever adds time, and it once pushed the tiny op's median to 3x its minimum."""
    b = get_backend(name, threads=1)
    small, big = b.time_op(TINY, FAST), b.time_op(BIG, FAST)
    assert big.stats.min_ms > 5 * small.stats.min_ms, (small.stats.min_ms, big.stats.min_ms)
    low = b.time_network(get_arch("squeezenas-small:random:3", "32x64"), FAST)
    high = b.time_network(get_arch("squeezenas-small:random:3", "256x512"), FAST)
    assert high.stats.min_ms > 2 * low.stats.min_ms, (low.stats.min_ms, high.stats.min_ms)


def test_onnxruntime_names_its_target_and_refuses_unknown_providers():
    b = get_backend("onnxruntime", threads=1)
    assert b.target("cpu-x86").id == "cpu-x86/onnxruntime/fp32@ep=cpu,threads=1"
    assert "onnxruntime" in b.versions()
    with pytest.raises(ValueError, match="provider"):
        get_backend("onnxruntime", provider="rocm")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="pytorch-cuda needs a CUDA GPU; none visible to torch")
@pytest.mark.parametrize("precision,graphs", [("fp32", False), ("fp16", False), ("fp16", True)])
def test_pytorch_cuda_on_a_gpu(precision, graphs):
    b = get_backend("pytorch-cuda", precision=precision, cuda_graphs=graphs)
    assert isinstance(b, TorchBackend)
    assert torch.backends.cudnn.benchmark
    assert b.target("h100").settings == ({} if graphs else {"cuda_graphs": "0"})  # graphs are the default
    r = b.time_op(TINY, FAST)
    assert r.env["graphs"] == graphs and "enqueue_ms" in r.env
    big = b.time_op(GPU_BIG, FAST)
    assert big.stats.median_ms > 3 * r.stats.median_ms, (r.stats.median_ms, big.stats.median_ms)
    low = b.time_network(get_arch("squeezenas-small:random:3", "64x128"), FAST)
    high = b.time_network(get_arch("squeezenas-small:random:3", "512x1024"), FAST)
    assert high.stats.median_ms > 1.5 * low.stats.median_ms, (low.stats.median_ms, high.stats.median_ms)
    torch.manual_seed(0)
    module, inputs = b.build_op(TINY)
    with torch.no_grad():
        ref = _torch_reference(TINY).to("cuda", b.dtype)(*inputs)
        torch.testing.assert_close(module(*inputs), ref)
    b.close()
