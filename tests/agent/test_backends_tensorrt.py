"""TensorRT: the device-independent parts here; engine builds only where TensorRT and a GPU exist."""

from __future__ import annotations

import importlib.util

import pytest

from lutcore.ops import Conv, InvertedResidual
from profiler_agent.backends import available_backends, backend_class
from profiler_agent.backends.trt_api import handover_format_mask, network_flags, precision_flags, strongly_typed
from profiler_agent.backends.trt_config import (
    BuildSettings,
    CacheLayout,
    DeviceKey,
    default_cache_dir,
    engine_key,
    gpu_id,
    slug,
    write_atomic,
)
from profiler_agent.timing import TimingProtocol

OP = InvertedResidual(c_in=8, h=8, w=8, c_out=8, kernel=3, expansion=2)
BIG = Conv(c_in=256, h=128, w=128, c_out=256, kernel=3)
XAVIER = gpu_id("Xavier", (7, 2))
TRT_REASON = available_backends()["tensorrt"]


def test_module_imports_without_tensorrt():
    cls = backend_class("tensorrt")
    assert cls.name == "tensorrt" and cls.precisions == ("fp32", "fp16", "int8")
    if importlib.util.find_spec("tensorrt") is None:
        assert TRT_REASON is not None and "tensorrt" in TRT_REASON


def test_engine_key_changes_with_precision_trt_version_gpu_and_op():
    base = engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("fp16"))
    assert base == engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("fp16"))  # stable
    others = {
        engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("fp32")),
        engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("int8")),
        engine_key(OP.key, "10.3.0", XAVIER, BuildSettings("fp16")),
        engine_key(OP.key, "8.5.2.2", gpu_id("Orin", (8, 7)), BuildSettings("fp16")),
        engine_key(OP.replace(kernel=5).key, "8.5.2.2", XAVIER, BuildSettings("fp16")),
        engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("fp16", workspace_mb=256)),
        engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("fp16", opt_level=5)),
    }
    assert base not in others and len(others) == 7
    # the int8 range matters only for int8 builds
    assert base == engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("fp16", int8_range=2.0))
    a = engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("int8", int8_range=2.0))
    assert a != engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("int8"))


def test_builder_flags_per_version_for_the_typed_onnx():
    from tests.agent.gpu_fakes import FakeGpu, make_trt

    gpu = FakeGpu()
    t85, t10, t11 = (make_trt(v, gpu) for v in ("8.5.2.2", "10.3.0", "11.1.0"))
    assert precision_flags(t85, "fp16") == ["FP16"] and precision_flags(t85, "int8") == ["INT8"]
    assert precision_flags(t85, "fp32") == []
    for t in (t10, t11):
        assert strongly_typed(t) and all(precision_flags(t, p) == [] for p in ("fp32", "fp16", "int8"))
    assert network_flags(t85) == 1 << int(t85.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    assert network_flags(t10) == 1 << int(t10.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert handover_format_mask(t85, "fp32") == 1 << int(t85.TensorFormat.LINEAR)
    assert handover_format_mask(t11, "int8") & (1 << int(t11.TensorFormat.CHW32))


def test_builder_settings_as_data():
    assert BuildSettings("fp16").target_settings() == {}
    assert BuildSettings("fp16", opt_level=5, tf32=True).target_settings() == {"opt_level": "5", "tf32": "1"}
    for bad in ({"precision": "bf16"}, {"int8_range": 0}, {"workspace_mb": 0}, {"opt_level": 9}):
        with pytest.raises(ValueError):
            BuildSettings(**bad)


def test_tensor_sizes_in_vectorized_formats():
    from profiler_agent.backends.tensorrt import tensor_nbytes

    assert tensor_nbytes((1, 3, 4, 4), 4) == 192
    assert tensor_nbytes((1, 3, 4, 4), 2, vec_dim=1, components=8) == 1 * 8 * 16 * 2  # HWC8 pads channels to 8
    assert tensor_nbytes((1, 40, 2, 2), 1, vec_dim=1, components=32) == 64 * 4


def test_cache_layout_and_names(tmp_path, monkeypatch):
    assert gpu_id("NVIDIA H100 80GB HBM3", (9, 0)) == "nvidia-h100-80gb-hbm3-sm90"
    assert slug("  ") == "unknown" and slug("8.5.2.2") == "8.5.2.2"
    dev = DeviceKey(sm_count=8, max_sm_mhz=1377, power_mode="MAXN")
    lay = CacheLayout.at(tmp_path, "8.5.2.2", XAVIER, dev)
    base = tmp_path / "trt-8.5.2.2" / "xavier-sm72" / dev.dirname()
    assert lay.timing_cache == base / "timing.cache"
    assert lay.engine("abc", "fp16") == base / "fp16" / "abc.engine"
    assert lay.engine_info("abc", "fp16").suffix == ".json"
    write_atomic(lay.engine("abc", "fp16"), b"engine")
    assert lay.engine("abc", "fp16").read_bytes() == b"engine"
    assert [p.name for p in lay.engine("abc", "fp16").parent.iterdir()] == ["abc.engine"]  # no temp left
    monkeypatch.setenv("PROFILER_AGENT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "tensorrt"


@pytest.mark.gpu
@pytest.mark.skipif(TRT_REASON is not None, reason=f"tensorrt backend unavailable here: {TRT_REASON}")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_builds_caches_and_times(tmp_path, precision):
    from profiler_agent.backends import get_backend
    from profiler_agent.backends.tensorrt import TensorRTBackend

    p = TimingProtocol(ci=0.05, max_time_s=0.2)
    b = get_backend("tensorrt", precision=precision, cache_dir=str(tmp_path))
    assert isinstance(b, TensorRTBackend)
    r = b.time_op(OP, p)
    assert b.builds == 1 and b.engine_hits == 0
    assert b.layout.timing_cache.stat().st_size > 0
    b.time_op(OP, p)
    assert b.builds == 1 and b.engine_hits == 1  # second time from the engine cache
    b.close()
    b2 = get_backend("tensorrt", precision=precision, cache_dir=str(tmp_path), int8_range=2.0)
    big = b2.time_op(BIG, p)  # 9.7 GMACs, 377,000x OP's: far above a GPU's launch floor
    assert big.stats.median_ms > 3 * r.stats.median_ms, (r.stats.median_ms, big.stats.median_ms)
    b2.close()
