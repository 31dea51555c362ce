"""The GPU timing paths against faithful fakes of TensorRT 8.5 / 10 / 11, a GPU timeline, NVML and pycuda.

What a fake cannot show (real kernel speeds, real tactic choice) is left to scripts/gpu-smoke.sh
on a GPU; what these tests pin down is the API use per version, the precision recipe, the
timing protocol (graphs, events, enqueue time, warm-up, clocks) and the caches.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any, List

import pytest

from lutcore.ops import LRASPP, Conv, PoolFC
from profiler_agent.backends.gpu_runtime import PyCudaRuntime
from profiler_agent.backends.gpu_timing import GpuTimer, GpuTimingOptions
from profiler_agent.backends.trt_api import UnsupportedTensorRT, check_supported, support_problem
from profiler_agent.backends.trt_config import BuildSettings, DeviceKey, engine_key
from profiler_agent.timing import TimingProtocol
from tests.agent.gpu_fakes import (
    ENQUEUE_US,
    KERNEL_US,
    TRT_SURFACE,
    FakeClocks,
    FakeGpu,
    FakeRuntime,
    make_nvml,
    make_pycuda_driver,
    make_trt,
)

VERSIONS = list(TRT_SURFACE)
OP = Conv(c_in=8, h=8, w=8, c_out=8)
FAST = TimingProtocol(ci=0.05, max_time_s=0.2, min_samples=5, max_warmup_s=0.05, warmup_s=0.0)


def _backend(tmp_path, monkeypatch, version, precision="fp32", graphs=True, gpu=None, root="/", **kw):
    from profiler_agent.backends.tensorrt import TensorRTBackend

    gpu = gpu or FakeGpu()
    trt = make_trt(version, gpu)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    b = TensorRTBackend.__new__(TensorRTBackend)
    b._setup(BuildSettings(precision), FakeRuntime(gpu), FakeClocks(gpu), str(tmp_path),
             options=GpuTimingOptions(graphs=graphs), root=root, **kw)
    b.gpu_timer.clock = lambda: gpu.host  # the GPU's timeline is the host clock of this world
    return b, gpu, trt


# -- versions -------------------------------------------------------------------------------------


def test_supported_versions_and_refusals_by_name(monkeypatch):
    for ok in ("8.5.2.2", "8.6.1", "10.3.0", "11.1.0"):
        assert support_problem(ok) is None and check_supported(ok)
    too_old, too_new = support_problem("8.4.1"), support_problem("12.0.0")
    assert too_old is not None and "8.4.1" in too_old and "num_io_tensors" in too_old
    assert too_new is not None and "12.0.0" in too_new
    with pytest.raises(UnsupportedTensorRT, match="7.1.3"):
        check_supported("7.1.3")
    from profiler_agent.backends.tensorrt import TensorRTBackend

    old: Any = make_trt("8.5.2.2", FakeGpu())
    old.__version__ = "8.4.1"
    monkeypatch.setitem(sys.modules, "tensorrt", old)
    reason = TensorRTBackend.unavailable_reason()
    assert reason is not None and "8.4.1" in reason


@pytest.mark.parametrize("version", VERSIONS)
def test_the_fakes_refuse_what_their_version_lacks(version):
    trt = make_trt(version, FakeGpu())
    config = trt.Builder(trt.Logger()).create_builder_config()
    has_weak_typing = version.startswith(("8.", "10."))
    assert hasattr(trt.BuilderFlag, "FP16") == has_weak_typing
    assert hasattr(trt, "IInt8EntropyCalibrator2") == has_weak_typing
    assert hasattr(config, "int8_calibrator") == has_weak_typing
    assert hasattr(config, "builder_optimization_level") == (not version.startswith("8."))
    assert hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") == (not version.startswith("8."))
    with pytest.raises(AttributeError):
        config.no_such_setting = 1


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="the real tensorrt is not installed here")
def test_recorded_surface_matches_the_real_tensorrt():
    import tensorrt as trt

    from profiler_agent.backends.trt_api import parse_version

    major = parse_version(trt.__version__)[0]
    rec = next(v for k, v in TRT_SURFACE.items() if int(k.split(".")[0]) == major)
    for enum in ("BuilderFlag", "NetworkDefinitionCreationFlag", "DataType", "TensorFormat", "TensorIOMode"):
        for member in rec[enum]:
            assert hasattr(getattr(trt, enum), member), f"{enum}.{member}"
    for name in rec["module"]:
        assert hasattr(trt, name)
    for cls, attrs in rec["classes"].items():  # the bindings' classes carry their methods and properties
        for attr in attrs:
            assert hasattr(getattr(trt, cls), attr), f"{cls}.{attr}"
    for removed in ("FP16", "INT8"):
        assert hasattr(trt.BuilderFlag, removed) == (removed in rec["BuilderFlag"])


# -- the build recipe per version -----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_each_version_builds_the_precision_in_the_onnx_with_matching_io(tmp_path, monkeypatch, version, precision):
    b, gpu, trt = _backend(tmp_path, monkeypatch, version, precision)
    r = b.time_op(OP, FAST)
    built = b.builder._built[-1]
    assert built["precision"] == precision  # the kernels run at the target precision on every version
    strongly = not version.startswith("8.")
    assert built["flags"] == (
        [] if strongly else sorted({"fp32": [], "fp16": ["FP16"], "int8": ["INT8"]}[precision])
    )  # TF32 cleared everywhere; no weak-typing flags where the network is strongly typed
    want = {"fp32": "float32", "fp16": "float16", "int8": "int8"}[precision]
    assert {t["dtype"] for t in r.env["io"].values()} == {want}  # what the neighbours hand over
    assert not any(name.startswith("Reformatting") for name in built["layers"])  # no reformat at the borders
    if precision != "fp32":
        assert {t["format"] for t in r.env["io"].values()} == {"HWC8" if precision == "fp16" else "CHW32"}
    assert r.stats.median_ms == pytest.approx(KERNEL_US[precision] / 1e3, rel=0.02)


@pytest.mark.parametrize("version", ["8.5.2.2", "11.1.0"])
def test_a_2d_output_keeps_the_linear_format(tmp_path, monkeypatch, version):
    b, _, _ = _backend(tmp_path, monkeypatch, version, "int8")
    r = b.time_op(PoolFC(c_in=32, h=7, w=7, c_out=10), FAST)
    assert r.env["io"]["y"] == {"mode": "output", "dtype": "int8", "format": "LINEAR", "shape": [1, 10]}
    assert r.env["io"]["x"]["format"] == "CHW32"


def test_fp32_io_on_an_fp16_engine_would_cost_reformats(tmp_path, monkeypatch):
    """The fake charges border reformats: the old recipe (fp32 ONNX + FP16 flag) shows them."""
    b, gpu, trt = _backend(tmp_path, monkeypatch, "8.5.2.2", "fp16")
    from profiler_agent.backends.onnx_export import export_op

    b._typed = lambda onnx: onnx  # the pre-issue recipe: fp32 I/O, precision by flag only
    b.engine_bytes("old-recipe", lambda: export_op(OP)[0])
    assert sum(name.startswith("Reformatting") for name in b.builder._built[-1]["layers"]) == 2


# -- timing ---------------------------------------------------------------------------------------


def test_graphs_time_the_gpu_and_unGraphed_small_ops_are_flagged_enqueue_bound(tmp_path, monkeypatch):
    b, gpu, _ = _backend(tmp_path, monkeypatch, "10.3.0", "fp16")
    r = b.time_op(OP, FAST)
    gpu_ms = KERNEL_US["fp16"] / 1e3
    assert r.env["graphs"] and r.env["graph_k"] == 16
    assert r.stats.median_ms == pytest.approx(gpu_ms, rel=0.02)
    assert r.env["enqueue_ms"] == pytest.approx(ENQUEUE_US / 1e3) and r.env["enqueue_bound"] is True

    nb, gpu2, _ = _backend(tmp_path / "nog", monkeypatch, "10.3.0", "fp16", graphs=False)
    r2 = nb.time_op(OP, FAST)
    assert not r2.env["graphs"]
    assert r2.stats.median_ms == pytest.approx(ENQUEUE_US / 1e3, rel=0.02)  # the host's pace, not the GPU's
    assert nb.target("h100").settings == {"cuda_graphs": "0"} and b.target("h100").settings == {}


def test_rounds_reuse_the_engine_and_graph_and_the_warm_state(tmp_path, monkeypatch):
    b, gpu, _ = _backend(tmp_path, monkeypatch, "11.1.0", "fp16")
    first = b.time_op(OP, FAST)
    assert first.env["warmup"] == "full" and first.env["clocks_settled"]
    assert first.env["warmup_gpu_s"] >= 0.4  # the fake's clocks ramp for 400 ms of work: > the 200 ms floor
    assert first.env["clocks"]["sm_mhz"] == gpu.max_mhz and first.env["clocks"]["throttle"] == ["sw_power_cap"]
    second = b.time_op(OP, FAST)
    assert second.env["warmup"] == "kept"
    assert (b.builds, b.exports, gpu.captures) == (1, 1, 1)
    gpu.host += 5.0  # the GPU idles: clocks drop, the next op warms up again
    assert b.time_op(OP, FAST).env["warmup"] == "full"
    assert second.stats.median_ms == pytest.approx(first.stats.median_ms, rel=0.02)


def test_warmup_is_at_least_200ms_without_a_clock_reader():
    gpu = FakeGpu(ramp_ms=0.0)
    rt = FakeRuntime(gpu)
    t = GpuTimer(rt, None, GpuTimingOptions(), clock=lambda: gpu.host)
    s = rt.new_stream()
    info = t.warm(lambda: gpu.submit(s, 50.0, 5.0), s)
    assert info["warmup_gpu_s"] >= 0.2 and info["ramp_check"] == "no clock reader"


def test_a_new_backend_reuses_the_engine_on_disk_without_exporting(tmp_path, monkeypatch):
    b, gpu, _ = _backend(tmp_path, monkeypatch, "8.5.2.2", "int8")
    b.time_op(OP, FAST)
    b.close()
    b2, _, _ = _backend(tmp_path, monkeypatch, "8.5.2.2", "int8", gpu=gpu)
    b2.time_op(OP, FAST)
    assert (b2.builds, b2.engine_hits, b2.exports) == (0, 1, 0)


def test_inputs_are_bound_by_name(tmp_path, monkeypatch):
    op = LRASPP(c_in=16, h=4, w=8, c_out=4, c_low=8, h_low=8, w_low=16, mid=8, pool_kernel=(3, 3),
                pool_stride=(2, 2), upsample=2)
    b, gpu, _ = _backend(tmp_path, monkeypatch, "10.3.0", "fp32")
    r = b.time_op(op, FAST)  # the fake engine lists I/O in another order and checks each input's bytes
    assert set(r.env["io"]) == {"x", "low", "y"}
    assert r.env["io"]["low"]["shape"] == [1, 8, 8, 16]
    from profiler_agent.backends.tensorrt import TensorRTError

    with pytest.raises(TensorRTError, match="no feed"):
        b.prepare(b.engine_bytes(op.key, lambda: b"unused"), {"x": __import__("numpy").zeros((1, 16, 4, 8))})


def test_pycuda_runtime_when_torch_has_no_cuda(tmp_path, monkeypatch):
    gpu = FakeGpu()
    driver = make_pycuda_driver(gpu)
    pycuda: Any = type(sys)("pycuda")  # a fake package: its driver is set below
    pycuda.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    from profiler_agent.backends import gpu_runtime

    assert gpu_runtime.pycuda_problem() is None
    rt = gpu_runtime.default_runtime(0)  # torch here has no CUDA: pycuda is chosen
    assert isinstance(rt, PyCudaRuntime)
    assert rt.device_info() == {"name": gpu.name, "capability": "9.0", "sm_count": 132, "clock_khz": 1980000,
                                "pci_bus_id": "0000:3B:00.0", "cuda_driver": "12080"}
    s = rt.new_stream()
    t = GpuTimer(rt, None, GpuTimingOptions(warmup_s=0.0), clock=lambda: gpu.host)
    h = rt.stream_handle(s)
    graph, note = t.prepare_graph(lambda: gpu.submit(h, 3.0, 12.0), s)
    assert note is None and graph is not None
    r = t.time(lambda: gpu.submit(h, 3.0, 12.0), s, FAST, graph)
    # 3 us of GPU per execution, not the 12 us host enqueue (5%: the sample count follows the real clock)
    assert r.stats.median_ms == pytest.approx(0.003, rel=0.05) and r.env["runtime"] == "pycuda"
    rt.close()
    nocap = make_pycuda_driver(gpu, capture=False)
    monkeypatch.setitem(sys.modules, "pycuda.driver", nocap)
    pycuda.driver = nocap
    rt2 = PyCudaRuntime(0)
    t2 = GpuTimer(rt2, None, GpuTimingOptions(warmup_s=0.0), clock=lambda: gpu.host)
    s2 = rt2.new_stream()
    g2, note2 = t2.prepare_graph(lambda: gpu.submit(s2.handle, 3.0, 12.0), s2)
    assert g2 is None and note2 is not None and "stream capture" in note2
    r2 = t2.time(lambda: gpu.submit(s2.handle, 3.0, 12.0), s2, FAST, None, note2)
    assert r2.env["graphs_unavailable"] == note2 and r2.env["enqueue_bound"]


# -- caches ---------------------------------------------------------------------------------------


def test_caches_are_keyed_by_power_mode_sm_count_clock_and_versions():
    s = BuildSettings("fp16")
    base = DeviceKey(sm_count=16, max_sm_mhz=1300, power_mode="MAXN", versions=(("tensorrt", "8.5.2.2"),))
    k = engine_key(OP.key, "8.5.2.2", "orin-sm87", s, base)
    others = [
        DeviceKey(16, 1300, "15W", base.versions), DeviceKey(8, 1300, "MAXN", base.versions),
        DeviceKey(16, 918, "MAXN", base.versions), DeviceKey(16, 1300, "MAXN", (("tensorrt", "8.6.2"),)),
    ]
    assert all(engine_key(OP.key, "8.5.2.2", "orin-sm87", s, d) != k for d in others)
    assert len({d.dirname() for d in [base, *others]}) == 5 and base.dirname().startswith("sm16-1300mhz-pm-maxn-")


@pytest.mark.parametrize("version", ["8.5.2.2", "11.1.0"])  # refused loudly by 8.5, dropped silently by 11
def test_a_rejected_timing_cache_is_rebuilt_loudly_or_raises(tmp_path, monkeypatch, caplog, version):
    b, gpu, _ = _backend(tmp_path, monkeypatch, version, "fp16")
    b.time_op(OP, FAST)
    path = b.layout.timing_cache
    path.write_bytes(b"TC9.9.9|another build|" + b"tactics;" * 20)  # not this TensorRT's
    from profiler_agent.backends.tensorrt import TensorRTError

    with pytest.raises(TensorRTError, match="rejected the timing cache"):
        _backend(tmp_path, monkeypatch, version, "fp16", gpu=gpu, on_cache_reject="raise")
    with caplog.at_level(logging.WARNING):
        b2, _, _ = _backend(tmp_path, monkeypatch, version, "fp16", gpu=gpu)
    assert b2.cache_rejected and "rejected the timing cache" in caplog.text
    assert path.with_name("timing.cache.rejected").read_bytes().startswith(b"TC9.9.9")
    b2.time_op(Conv(c_in=8, h=8, w=8, c_out=16), FAST)
    assert path.read_bytes().startswith(f"TC{version}|".encode())
    b3, _, _ = _backend(tmp_path, monkeypatch, version, "fp16", gpu=gpu)  # its own cache is taken back
    assert not b3.cache_rejected and b3.timing_cache.serialize() == path.read_bytes()


# -- provenance -----------------------------------------------------------------------------------


def _jetson_root(tmp_path):
    def w(rel, text):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    w("etc/nv_tegra_release", "# R35 (release), REVISION: 2.1, GCID: 1, BOARD: t186ref, EABI: aarch64")
    w("var/lib/nvpmodel/status", "pmode:0002")
    w("etc/nvpmodel.conf", "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=2 NAME=30W >\n< PM_CONFIG DEFAULT=0 >")
    w("sys/class/devfreq/17000000.ga10b/cur_freq", "624750000")
    w("sys/class/devfreq/17000000.ga10b/max_freq", "624750000")
    w("sys/class/devfreq/17000000.ga10b/min_freq", "306000000")
    w("sys/kernel/debug/bpmp/debug/clk/emc/rate", "3199000000")
    return tmp_path


def test_jetson_power_mode_enters_the_target_and_devfreq_clocks(tmp_path, monkeypatch):
    root = _jetson_root(tmp_path / "root")
    b, _, _ = _backend(tmp_path / "c", monkeypatch, "8.5.2.2", "fp16", root=str(root))
    t = b.target("orin")
    assert t.settings["power_mode"] == "30W"
    assert b.target("orin", {"power_mode": "given"}).settings["power_mode"] == "given"
    assert "pm-30w" in str(b.layout.base)
    from profiler_agent.probe.gpu_clocks import DevfreqClocks, debugfs_allowed

    clocks = DevfreqClocks(root).read()
    assert clocks["sm_mhz"] == 624 and clocks["power_mode"] == "30W" and clocks["mem_mhz"] == 3199
    assert debugfs_allowed(root)  # a fixture tree may be read whole
    from profiler_agent.probe.jetson import gpu_emc_clocks

    assert gpu_emc_clocks(root)["emc"]["node"] == "bpmp/emc" and "emc" not in gpu_emc_clocks(root, debugfs=False)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert not debugfs_allowed("/")  # a user service does not read root-only debugfs


def test_nvml_clocks_with_throttle_reasons():
    from profiler_agent.probe.gpu_clocks import NvmlClocks, decode_throttle

    gpu = FakeGpu()
    gpu.throttle_mask = 0x1 | 0x20 | 0x400
    nv = NvmlClocks(3, nvml=make_nvml(gpu), pci_bus_id="0000:3B:00.0")
    assert nv.handle == ("gpu", "0000:3B:00.0")  # the GPU CUDA uses, whatever CUDA_VISIBLE_DEVICES did
    r = nv.read()
    assert r["throttle"] == ["gpu_idle", "sw_thermal_slowdown", "other_0x400"] and r["slowdown"]
    assert r["sm_mhz"] == gpu.idle_mhz and r["max_sm_mhz"] == 1980 and r["power_w"] == 412.0
    old = make_nvml(gpu, event_reasons=False)  # drivers before 535 only have the throttle name
    assert NvmlClocks(0, nvml=old).read()["throttle"] == ["gpu_idle", "sw_thermal_slowdown", "other_0x400"]
    assert decode_throttle(0) == []


def test_device_class_from_the_gpu_name(tmp_path):
    from profiler_agent import cli
    from profiler_agent.probe.gpu import device_class_from_gpu_name

    names = {"NVIDIA H100 80GB HBM3": "h100", "NVIDIA H200": "h200", "NVIDIA A100-SXM4-40GB": "a100",
             "NVIDIA L4": "l4", "NVIDIA L40S": "l40s", "Tesla T4": "t4", "NVIDIA GeForce RTX 4090": "rtx-4090",
             "NVIDIA RTX A6000": "rtx-a6000", "Orin (nvgpu)": None}
    assert {n: device_class_from_gpu_name(n) for n in names} == names
    info = tmp_path / "proc/driver/nvidia/gpus/0000:00:1e.0/information"
    info.parent.mkdir(parents=True)
    info.write_text("Model: \t\t NVIDIA H200\nIRQ:   42\n")
    assert cli.guess_device_class(str(tmp_path), "tensorrt") == "h200"
    assert cli.guess_device_class(str(tmp_path), "pytorch-cuda") == "h200"
    assert cli.guess_device_class(str(tmp_path), "pytorch-cpu").startswith("cpu-")
    from profiler_agent.probe import probe

    assert probe(root=str(tmp_path))["gpu"] == [{"index": 0, "name": "NVIDIA H200"}]


def test_default_rounds_are_one_for_gpu_backends():
    from profiler_agent.backends import backend_class

    assert backend_class("tensorrt").default_rounds == 1 and backend_class("pytorch-cuda").default_rounds == 1
    assert backend_class("pytorch-cpu").default_rounds == 5


def test_tf32_through_the_current_torch_api():
    import types

    torch = pytest.importorskip("torch")
    from profiler_agent.backends.torch_cuda import set_tf32

    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    try:
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
            assert set_tf32(torch, False) == "fp32_precision"
            assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    finally:
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = before
    calls: List[str] = []
    old = types.SimpleNamespace(
        backends=types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=types.SimpleNamespace()),
                                       cudnn=types.SimpleNamespace(allow_tf32=True)),
        set_float32_matmul_precision=calls.append,
    )
    assert set_tf32(old, False) == "allow_tf32" and calls == ["highest"] and old.backends.cudnn.allow_tf32 is False


def test_measure_keeps_sync_when_given_a_timer_object():
    from profiler_agent.timing import IntervalTimer, measure

    calls = {"sync": 0, "start": 0}

    class Timer(IntervalTimer):
        def start(self) -> None:
            calls["start"] += 1
            self.t = calls["start"]

        def stop(self) -> float:
            return 1e-3

    def sync() -> None:
        calls["sync"] += 1

    r = measure(lambda: None, TimingProtocol(max_time_s=0.05, min_samples=3, min_sample_time_s=0), sync=sync,
                timer=Timer())
    assert calls["start"] >= r.stats.n and calls["sync"] == 2 * calls["start"]  # drained at both ends of every block
