"""TensorRT: the device-independent parts here; engine builds only where TensorRT and a GPU exist."""

from __future__ import annotations

import importlib.util

import pytest

from lutcore.ops import InvertedResidual
from profiler_agent.backends import available_backends, backend_class
from profiler_agent.backends.trt_config import (
    BuildSettings,
    CacheLayout,
    default_cache_dir,
    engine_key,
    gpu_id,
    slug,
    write_atomic,
)
from profiler_agent.timing import TimingProtocol

OP = InvertedResidual(c_in=8, h=8, w=8, c_out=8, kernel=3, expansion=2)
XAVIER = gpu_id("Xavier", (7, 2))
TRT_REASON = available_backends()["tensorrt"]


def test_module_imports_without_tensorrt():
    cls = backend_class("tensorrt")
    assert cls.name == "tensorrt" and cls.precisions == ("fp32", "fp16", "int8")
    if importlib.util.find_spec("tensorrt") is None:
        assert "tensorrt" in TRT_REASON


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
    # int8 knobs matter only for int8 builds
    assert base == engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("fp16", int8_mode="ranges"))
    a = engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("int8", int8_mode="ranges"))
    assert a != engine_key(OP.key, "8.5.2.2", XAVIER, BuildSettings("int8", int8_mode="calibrate"))


def test_builder_settings_as_data():
    assert BuildSettings("fp32").builder_flags() == []
    assert BuildSettings("fp16").builder_flags() == ["FP16"]
    assert BuildSettings("int8").builder_flags() == ["FP16", "INT8"]
    assert BuildSettings("fp32").cleared_flags() == ["TF32"]
    assert BuildSettings("fp32", tf32=True).cleared_flags() == []
    assert BuildSettings("fp16").target_settings() == {}
    assert BuildSettings("fp16", opt_level=5, tf32=True).target_settings() == {"opt_level": "5", "tf32": "1"}
    for bad in ({"precision": "bf16"}, {"int8_mode": "magic"}, {"workspace_mb": 0}, {"opt_level": 9}):
        with pytest.raises(ValueError):
            BuildSettings(**bad)


def test_cache_layout_and_names(tmp_path, monkeypatch):
    assert gpu_id("NVIDIA H100 80GB HBM3", (9, 0)) == "nvidia-h100-80gb-hbm3-sm90"
    assert slug("  ") == "unknown" and slug("8.5.2.2") == "8.5.2.2"
    lay = CacheLayout.at(tmp_path, "8.5.2.2", XAVIER)
    assert lay.timing_cache == tmp_path / "trt-8.5.2.2" / "xavier-sm72" / "timing.cache"
    assert lay.engine("abc", "fp16") == tmp_path / "trt-8.5.2.2" / "xavier-sm72" / "fp16" / "abc.engine"
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

    p = TimingProtocol(ci=0.05, max_time_s=0.2)
    b = get_backend("tensorrt", precision=precision, cache_dir=str(tmp_path))
    r = b.time_op(OP, p)
    assert r.stats.median_ms > 0 and b.builds == 1 and b.engine_hits == 0
    assert b.layout.timing_cache.stat().st_size > 0
    b.time_op(OP, p)
    assert b.builds == 1 and b.engine_hits == 1  # second time from the engine cache
    b.close()
    b2 = get_backend("tensorrt", precision=precision, cache_dir=str(tmp_path), int8_mode="ranges")
    assert b2.time_op(OP.replace(c_out=16), p).stats.median_ms > 0
    b2.close()


class FakeTensorRT:
    """A stand-in for the ``tensorrt`` module (hardware and library we do not have here).

    It models just the calls the backend makes while building, so the build recipe (flags,
    ranges, calibrator, timing cache, engine cache) is exercised on the real ONNX export.
    """

    __version__ = "8.5.2.2"

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class NetworkDefinitionCreationFlag:
        EXPLICIT_BATCH = 0

    class MemoryPoolType:
        WORKSPACE = "WORKSPACE"

    class BuilderFlag:
        FP16, INT8, TF32 = "FP16", "INT8", "TF32"

    class DataType:
        FLOAT, INT32 = "FLOAT", "INT32"

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    class Tensor:
        def __init__(self, name: str, shape: tuple, dtype: str = "FLOAT") -> None:
            self.name, self.shape, self.dtype, self.range = name, shape, dtype, None

        def set_dynamic_range(self, lo: float, hi: float) -> bool:
            self.range = (lo, hi)
            return True

    class Layer:
        def __init__(self, outputs: list) -> None:
            self.outputs = outputs
            self.num_outputs = len(outputs)

        def get_output(self, j: int) -> FakeTensorRT.Tensor:
            return self.outputs[j]

    class Network:
        def __init__(self) -> None:
            self.inputs, self.layers = [], []

        num_inputs = property(lambda self: len(self.inputs))
        num_layers = property(lambda self: len(self.layers))

        def get_input(self, i: int):
            return self.inputs[i]

        def get_layer(self, i: int):
            return self.layers[i]

    class OnnxParser:
        def __init__(self, network, logger) -> None:
            self.network, self.num_errors = network, 0

        def parse(self, blob: bytes) -> bool:
            import onnx

            g = onnx.load_from_string(blob).graph
            T = FakeTensorRT.Tensor
            for i in g.input:
                self.network.inputs.append(T(i.name, tuple(d.dim_value for d in i.type.tensor_type.shape.dim)))
            for n in g.node:
                dtype = "INT32" if n.op_type == "Shape" else "FLOAT"
                self.network.layers.append(FakeTensorRT.Layer([T(o, (), dtype) for o in n.output]))
            return True

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytearray(data)

        def serialize(self) -> bytes:
            return bytes(self.data)

    class Config:
        def __init__(self) -> None:
            self.flags, self.pool, self.cache, self.int8_calibrator = set(), {}, None, None
            self.builder_optimization_level = 3

        def set_memory_pool_limit(self, pool, size: int) -> None:
            self.pool[pool] = size

        def set_flag(self, f: str) -> None:
            self.flags.add(f)

        def clear_flag(self, f: str) -> None:
            self.flags.discard(f)

        def create_timing_cache(self, data: bytes):
            return FakeTensorRT.TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

    class Builder:
        def __init__(self, logger) -> None:
            self.configs = []

        def create_network(self, flags: int):
            return FakeTensorRT.Network()

        def create_builder_config(self):
            self.configs.append(FakeTensorRT.Config())
            return self.configs[-1]

        def build_serialized_network(self, network, config) -> bytes:
            config.cache.data += b"tactic;"  # the builder adds what it timed to the shared cache
            if config.int8_calibrator is not None:
                c = config.int8_calibrator
                assert c.get_batch_size() == 1
                names = [t.name for t in network.inputs]
                while c.get_batch(names) is not None:
                    pass
            return b"ENGINE " + ",".join(sorted(config.flags)).encode()

    class Runtime:
        def __init__(self, logger) -> None:
            pass


@pytest.fixture
def fake_trt(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", FakeTensorRT)
    return FakeTensorRT


def _backend(tmp_path, settings: BuildSettings):
    from profiler_agent.backends.tensorrt import TensorRTBackend

    b = TensorRTBackend.__new__(TensorRTBackend)
    b._setup(settings, XAVIER, str(tmp_path), True)
    return b


def test_build_recipe_and_caches_against_a_stand_in_tensorrt(tmp_path, fake_trt):
    from profiler_agent.backends.onnx_export import export_op

    b = _backend(tmp_path, BuildSettings("fp16", workspace_mb=64, opt_level=4))
    exports = []

    def onnx_bytes() -> bytes:
        exports.append(1)
        return export_op(OP)[0]

    blob = b.engine_bytes(OP.key, onnx_bytes)
    assert blob == b"ENGINE FP16"  # FP16 set, TF32 cleared
    cfg = b.builder.configs[-1]
    assert cfg.pool == {"WORKSPACE": 64 << 20} and cfg.builder_optimization_level == 4
    assert cfg.cache is b.timing_cache  # one timing cache for every build of the run
    assert b.layout.timing_cache.read_bytes() == b"tactic;"  # persisted after the build
    key = engine_key(OP.key, "8.5.2.2", XAVIER, b.build_settings)
    assert b.layout.engine(key, "fp16").read_bytes() == blob
    assert b'"op": "' + OP.key.encode() in b.layout.engine_info(key, "fp16").read_bytes()
    assert b.engine_bytes(OP.key, onnx_bytes) == blob and len(exports) == 1 and b.engine_hits == 1
    b.engine_bytes(OP.replace(c_out=16).key, lambda: export_op(OP.replace(c_out=16))[0])
    assert b.layout.timing_cache.read_bytes() == b"tactic;tactic;"
    b2 = _backend(tmp_path, BuildSettings("fp16"))  # a new run starts from the persisted cache
    assert bytes(b2.timing_cache.data) == b"tactic;tactic;"
    assert b2.target("xavier").id == "xavier/tensorrt/fp16"


def test_int8_ranges_against_a_stand_in_tensorrt(tmp_path, fake_trt):
    from profiler_agent.backends.onnx_export import export_op

    onnx = export_op(OP)[0]
    b = _backend(tmp_path, BuildSettings("int8", int8_mode="ranges", int8_range=3.0))
    net, _ = b._network(onnx)
    cfg = b._config(net)
    assert cfg.flags == {"FP16", "INT8"} and cfg.int8_calibrator is None
    assert net.inputs[0].range == (-3.0, 3.0)
    outs = [t for layer in net.layers for t in layer.outputs]
    assert outs and all(t.range == (-3.0, 3.0) for t in outs if t.dtype == "FLOAT")
