"""Backends: registry, pytorch-cpu and onnxruntime for real, GPU backends where a GPU exists."""

from __future__ import annotations

import pytest
import torch

from lutcore.ops import InvertedResidual, Skip
from lutcore.spaces import get_arch
from profiler_agent.backends import (
    Backend,
    BackendUnavailable,
    available_backends,
    backend_names,
    get_backend,
)
from profiler_agent.timing import TimingProtocol

FAST = TimingProtocol(ci=0.05, max_time_s=0.15, min_samples=6, max_warmup_s=0.05)
TINY = InvertedResidual(c_in=8, h=8, w=8, c_out=8, kernel=3, expansion=2)


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
        assert "GPU" in av["pytorch-cuda"]
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
    assert r.stats.median_ms > 0 and r.stats.n >= 6 and len(r.samples) == r.stats.n
    with pytest.raises(ValueError, match="identity"):
        b.time_op(Skip(c_in=8, h=8, w=8, c_out=8, mode="identity"), FAST)


def test_pytorch_cpu_times_a_whole_network(restore_threads):
    arch = get_arch("squeezenas-small:random:3", "64x128")
    r = get_backend("pytorch-cpu", threads=1).time_network(arch, FAST)
    assert r.stats.median_ms > 0


def test_onnxruntime_times_an_op_and_a_network():
    b = get_backend("onnxruntime", threads=1)
    assert b.target("cpu-x86").id == "cpu-x86/onnxruntime/fp32@ep=cpu,threads=1"
    assert "onnxruntime" in b.versions()
    r = b.time_op(TINY, FAST)
    assert r.stats.median_ms > 0
    r = b.time_network(get_arch("squeezenas-small:random:3", "64x128"), FAST)
    assert r.stats.median_ms > 0
    with pytest.raises(ValueError, match="provider"):
        get_backend("onnxruntime", provider="rocm")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="pytorch-cuda needs a CUDA GPU; none visible to torch")
@pytest.mark.parametrize("precision,graphs", [("fp32", False), ("fp16", False), ("fp16", True)])
def test_pytorch_cuda_on_a_gpu(precision, graphs):
    b = get_backend("pytorch-cuda", precision=precision, cuda_graphs=graphs)
    assert torch.backends.cudnn.benchmark
    assert b.target("h100").settings == ({} if graphs else {"cuda_graphs": "0"})  # graphs are the default
    r = b.time_op(TINY, FAST)
    assert r.stats.median_ms > 0 and r.env["graphs"] == graphs and "enqueue_ms" in r.env
    r = b.time_network(get_arch("squeezenas-small:random:3", "64x128"), FAST)
    assert r.stats.median_ms > 0
    b.close()
