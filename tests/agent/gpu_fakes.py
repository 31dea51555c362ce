"""Faithful stand-ins for a GPU, TensorRT 8.5 / 10 / 11, NVML and pycuda, for machines without them.

**The API surface is recorded, not invented:** ``TRT_SURFACE`` lists, per TensorRT version,
which enum members and which attributes of each class the Python bindings have (from NVIDIA's
API references and the 10.x -> 11.x migration guide: 11 removed ``BuilderFlag.FP16``/``INT8``,
``IInt8EntropyCalibrator2``, ``int8_calibrator``, ``set_dynamic_range``, ...). Every fake
object refuses any public attribute its version does not list, so code that drifts from the
real API fails here. Where the real ``tensorrt`` imports, ``test_recorded_surface_matches_real``
checks the table against it.

**The GPU is a timeline:** a host clock advances by each call's host cost; a stream's work
starts when both the host has enqueued it and the stream is free; events fire when the work
before them is done; a CUDA graph replays its captured work back to back after one launch cost.
So an op enqueued one call at a time from the host runs at the host's pace when its GPU time is
smaller than the enqueue cost, exactly the failure CUDA graphs fix. The SM clock ramps with
busy time (as a real GPU's boost does) and GPU work takes longer at lower clocks.
"""

from __future__ import annotations

import json
import types
from typing import Any, Callable, Dict, List, Optional, Tuple

from profiler_agent.backends.gpu_runtime import Event, GpuRuntime

# -- the recorded API surface -----------------------------------------------------------------

_COMMON_ENUMS = {
    "MemoryPoolType": ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM", "DLA_GLOBAL_DRAM"],
    "TensorIOMode": ["NONE", "INPUT", "OUTPUT"],
    "TensorFormat": ["LINEAR", "CHW2", "HWC8", "CHW4", "CHW16", "CHW32", "DHWC8", "CDHW32", "HWC", "DLA_LINEAR",
                     "DLA_HWC4", "HWC16"],
    "ProfilingVerbosity": ["LAYER_NAMES_ONLY", "NONE", "DETAILED"],
}
_CLASSES_85 = {
    "Builder": ["create_network", "create_builder_config", "build_serialized_network", "platform_has_fast_fp16",
                "platform_has_fast_int8"],
    "IBuilderConfig": ["set_memory_pool_limit", "get_memory_pool_limit", "set_flag", "clear_flag", "get_flag",
                       "create_timing_cache", "set_timing_cache", "get_timing_cache", "int8_calibrator",
                       "profiling_verbosity"],
    "INetworkDefinition": ["num_inputs", "num_outputs", "num_layers", "get_input", "get_output", "get_layer"],
    "ITensor": ["name", "shape", "dtype", "allowed_formats", "set_dynamic_range", "is_network_input"],
    "OnnxParser": ["parse", "num_errors", "get_error"],
    "Runtime": ["deserialize_cuda_engine"],
    "ICudaEngine": ["num_io_tensors", "get_tensor_name", "get_tensor_shape", "get_tensor_dtype", "get_tensor_mode",
                    "get_tensor_format", "get_tensor_vectorized_dim", "get_tensor_components_per_element",
                    "get_tensor_bytes_per_component", "create_execution_context", "num_layers",
                    "device_memory_size"],
    "IExecutionContext": ["set_tensor_address", "get_tensor_address", "execute_async_v3", "profiler",
                          "enqueue_emits_profile", "set_input_shape"],
    "ITimingCache": ["serialize", "combine", "reset"],
}


def _v10_classes() -> Dict[str, List[str]]:
    c = {k: list(v) for k, v in _CLASSES_85.items()}
    c["IBuilderConfig"] += ["builder_optimization_level"]
    return c


def _v11_classes() -> Dict[str, List[str]]:
    c = _v10_classes()
    c["IBuilderConfig"].remove("int8_calibrator")
    c["ITensor"].remove("set_dynamic_range")
    c["Builder"] = [m for m in c["Builder"] if not m.startswith("platform_has")]
    c["ICudaEngine"].remove("device_memory_size")
    return c


TRT_SURFACE: Dict[str, Dict[str, Any]] = {
    "8.5.2.2": {
        "module": ["Logger", "Builder", "Runtime", "OnnxParser", "IProfiler", "IInt8EntropyCalibrator2"],
        "BuilderFlag": ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
                        "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS",
                        "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
                        "REJECT_EMPTY_ALGORITHMS", "ENABLE_TACTIC_HEURISTIC", "VERSION_COMPATIBLE"],
        "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH", "EXPLICIT_PRECISION"],
        "DataType": ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8"],
        "classes": _CLASSES_85,
    },
    "10.3.0": {
        "module": ["Logger", "Builder", "Runtime", "OnnxParser", "IProfiler", "IInt8EntropyCalibrator2"],
        "BuilderFlag": ["FP16", "BF16", "INT8", "FP8", "INT4", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE",
                        "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS",
                        "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS",
                        "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "STRIP_PLAN", "REFIT_IDENTICAL",
                        "WEIGHT_STREAMING"],
        "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH", "STRONGLY_TYPED"],
        "DataType": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4"],
        "classes": _v10_classes(),
    },
    "11.1.0": {
        "module": ["Logger", "Builder", "Runtime", "OnnxParser", "IProfiler"],
        "BuilderFlag": ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
                        "SAFETY_SCOPE", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME",
                        "STRIP_PLAN", "REFIT_IDENTICAL", "WEIGHT_STREAMING"],
        "NetworkDefinitionCreationFlag": ["STRONGLY_TYPED"],
        "DataType": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4"],
        "classes": _v11_classes(),
    },
}
for _v in TRT_SURFACE.values():
    _v.update({k: list(m) for k, m in _COMMON_ENUMS.items()})
ENUMS = ("BuilderFlag", "NetworkDefinitionCreationFlag", "DataType", *_COMMON_ENUMS)


class EnumMember(int):
    """An int-valued enum member that prints like pybind11's (``DataType.HALF``)."""

    qual: str

    def __new__(cls, value: int, qual: str) -> EnumMember:
        obj = int.__new__(cls, value)
        obj.qual = qual
        return obj

    def __str__(self) -> str:
        return self.qual


def _enum(name: str, members: List[str]) -> Any:
    # values follow the real enums' order where it matters (TensorFormat bits, DataType ids)
    return types.SimpleNamespace(**{m: EnumMember(i, f"{name}.{m}") for i, m in enumerate(members)})


class Restricted:
    """Public attributes must be in the class's recorded surface for this version."""

    _api = ""  # class name in TRT_SURFACE[v]["classes"]
    _allowed: Tuple[str, ...] = ()

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in object.__getattribute__(self, "_allowed"):
            raise AttributeError(f"'tensorrt.{type(self)._api}' has no attribute '{name}' in this TensorRT version")
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in type(self)._allowed:
            raise AttributeError(f"'tensorrt.{type(self)._api}' has no attribute '{name}' in this TensorRT version")
        object.__setattr__(self, name, value)


# -- the GPU ----------------------------------------------------------------------------------


class FakeGpu:
    """Host clock, streams, memory, graphs, clocks: see the module docstring."""

    def __init__(self, max_mhz: int = 1980, idle_mhz: int = 990, ramp_ms: float = 400.0, sm_count: int = 132,
                 name: str = "NVIDIA H100 80GB HBM3", capability: str = "9.0") -> None:
        self.host = 0.0  # seconds
        self.max_mhz, self.idle_mhz, self.ramp_ms = max_mhz, idle_mhz, ramp_ms
        self.sm_count, self.name, self.capability = sm_count, name, capability
        self.busy_ms = 0.0  # device busy time since the last long idle: drives the clock ramp
        self.last_done = 0.0
        self.streams: Dict[int, Dict[str, Any]] = {}
        self.memory: Dict[int, int] = {}  # ptr -> bytes
        self.written: Dict[int, int] = {}  # ptr -> bytes uploaded
        self.next_ptr = 0x7000_0000
        self.captures = 0
        self.graph_launch_us = 4.0
        self.throttle_mask = 0x4  # sw_power_cap

    # clocks
    def sm_mhz(self) -> int:
        if self.host - self.last_done > 1.0:  # idle for a second: clocks back down
            self.busy_ms = 0.0
        frac = min(1.0, self.busy_ms / self.ramp_ms) if self.ramp_ms else 1.0
        return int(self.idle_mhz + frac * (self.max_mhz - self.idle_mhz))

    def host_spend(self, us: float) -> None:
        self.host += us * 1e-6

    # streams
    def new_stream(self) -> int:
        handle = 0x1000 + len(self.streams)
        self.streams[handle] = {"ready": 0.0, "capture": None}
        return handle

    def submit(self, handle: int, gpu_us: float, host_us: float) -> None:
        """One enqueue: the host pays ``host_us``; the device runs ``gpu_us`` (at max clock) when free."""
        s = self.streams[handle]
        self.host_spend(host_us)
        if s["capture"] is not None:
            s["capture"].append(gpu_us)
            return
        self._run(s, [gpu_us])

    def _run(self, s: Dict[str, Any], works: List[float]) -> None:
        start = max(s["ready"], self.host)
        t = start
        mhz = self.sm_mhz()
        for w in works:
            d = w * 1e-6 * self.max_mhz / mhz
            t += d
            self.busy_ms += d * 1e3
        s["ready"] = t
        self.last_done = max(self.last_done, t)

    def begin_capture(self, handle: int) -> None:
        self.streams[handle]["capture"] = []

    def end_capture(self, handle: int) -> List[float]:
        s = self.streams[handle]
        works, s["capture"] = s["capture"], None
        self.captures += 1
        return works

    def launch_graph(self, handle: int, works: List[float]) -> None:
        self.host_spend(self.graph_launch_us)
        self._run(self.streams[handle], works)

    def sync(self, handle: int) -> None:
        self.host = max(self.host, self.streams[handle]["ready"])

    def alloc(self, nbytes: int) -> int:
        ptr = self.next_ptr
        self.next_ptr += (nbytes + 255) // 256 * 256 + 256
        self.memory[ptr] = nbytes
        return ptr


class _FakeEvent(Event):
    def __init__(self, gpu: FakeGpu) -> None:
        self.gpu = gpu
        self.t: Optional[float] = None

    def record(self, stream: Any) -> None:
        s = self.gpu.streams[stream]
        self.t = max(s["ready"], self.gpu.host)

    def synchronize(self) -> None:
        assert self.t is not None
        self.gpu.host = max(self.gpu.host, self.t)

    def ms_since(self, start: Event) -> float:
        assert isinstance(start, _FakeEvent) and start.t is not None and self.t is not None
        return (self.t - start.t) * 1e3


class FakeRuntime(GpuRuntime):
    """The GpuRuntime interface over a FakeGpu (what TorchRuntime / PyCudaRuntime are on a real one)."""

    name = "fake"

    def __init__(self, gpu: FakeGpu, graphs: bool = True) -> None:
        self.gpu, self.graphs = gpu, graphs

    def new_stream(self) -> Any:
        return self.gpu.new_stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def alloc(self, nbytes: int) -> Tuple[int, Any]:
        ptr = self.gpu.alloc(nbytes)
        return ptr, ptr

    def upload(self, ptr: int, data: bytes) -> None:
        if len(data) > self.gpu.memory[ptr]:
            raise ValueError(f"upload of {len(data)} bytes into an allocation of {self.gpu.memory[ptr]}")
        self.gpu.written[ptr] = len(data)

    def new_event(self) -> Event:
        return _FakeEvent(self.gpu)

    def synchronize(self, stream: Any) -> None:
        self.gpu.sync(stream)

    def capture(self, stream: Any, work: Callable[[], None]) -> Callable[[], None]:
        from profiler_agent.backends.gpu_runtime import GraphsUnavailable

        if not self.graphs:
            raise GraphsUnavailable("fake runtime without graphs")
        self.gpu.begin_capture(stream)
        try:
            work()
        finally:
            works = self.gpu.end_capture(stream)
        return lambda: self.gpu.launch_graph(stream, works)

    def device_info(self) -> Dict[str, Any]:
        return {"name": self.gpu.name, "capability": self.gpu.capability, "sm_count": self.gpu.sm_count}


class FakeClocks:
    """A clock reader (``probe.gpu_clocks`` interface) over the FakeGpu."""

    source = "fake-nvml"

    def __init__(self, gpu: FakeGpu) -> None:
        self.gpu = gpu
        self.reads = 0

    def max_sm_mhz(self) -> int:
        return self.gpu.max_mhz

    def read(self) -> Dict[str, Any]:
        from profiler_agent.probe.gpu_clocks import decode_throttle

        self.reads += 1
        return {"source": self.source, "sm_mhz": self.gpu.sm_mhz(), "max_sm_mhz": self.gpu.max_mhz,
                "throttle": decode_throttle(self.gpu.throttle_mask)}


# -- TensorRT ---------------------------------------------------------------------------------

ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8"}
KERNEL_US = {"fp32": 6.0, "fp16": 3.0, "int8": 2.0}  # per compute node, at max clock
REFORMAT_US = 1.5
ENQUEUE_US = 12.0  # host cost of one execute_async_v3
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Resize", "GlobalAveragePool", "AveragePool")


def make_trt(version: str, gpu: FakeGpu) -> types.ModuleType:
    """A ``tensorrt`` module for ``version`` (a key of TRT_SURFACE) driving ``gpu``."""
    surface = TRT_SURFACE[version]
    major = int(version.split(".")[0])
    trt: Any = types.ModuleType("tensorrt")  # a fake: its attributes are set below
    trt.__version__ = version
    for e in ENUMS:
        setattr(trt, e, _enum(e, surface[e]))
    classes = surface["classes"]

    def restricted(api: str) -> type:
        return type(f"Fake{api}", (Restricted,), {"_api": api, "_allowed": tuple(classes[api])})

    DT = trt.DataType
    fmt = trt.TensorFormat

    class Logger:
        WARNING, INFO, ERROR = 2, 3, 1

        def __init__(self, level: int = 2) -> None:
            self.level = level
            self.errors: List[str] = []

    class IProfiler:
        def __init__(self) -> None:
            pass

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            raise NotImplementedError

    class ITensor(restricted("ITensor")):  # type: ignore[misc]
        def __init__(self, name: str, shape: Tuple[int, ...], dtype: Any, is_input: bool) -> None:
            self.name, self.shape, self.dtype = name, shape, dtype
            self.allowed_formats = 1 << int(fmt.LINEAR)
            self.is_network_input = is_input

        def set_dynamic_range(self, lo: float, hi: float) -> bool:
            return True

    class INetworkDefinition(restricted("INetworkDefinition")):  # type: ignore[misc]
        def __init__(self, flags: int) -> None:
            self._flags = flags
            self._inputs: List[Any] = []
            self._outputs: List[Any] = []
            self._nodes: List[Tuple[str, str]] = []
            self._qdq = False
            self._fp16 = False

        num_inputs = property(lambda self: len(self._inputs))
        num_outputs = property(lambda self: len(self._outputs))
        num_layers = property(lambda self: len(self._nodes))

        def get_input(self, i: int) -> Any:
            return self._inputs[i]

        def get_output(self, i: int) -> Any:
            return self._outputs[i]

        def get_layer(self, i: int) -> Any:
            return self._nodes[i]

        @property
        def _strongly_typed(self) -> bool:
            if major >= 11:
                return True
            st = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
            return st is not None and bool(self._flags & (1 << int(st)))

    class OnnxParser(restricted("OnnxParser")):  # type: ignore[misc]
        def __init__(self, network: Any, logger: Any) -> None:
            self._net, self._errors = network, []  # type: Tuple[Any, List[str]]

        num_errors = property(lambda self: len(self._errors))

        def get_error(self, i: int) -> str:
            return self._errors[i]

        def parse(self, blob: bytes) -> bool:
            import onnx

            net = self._net
            if major < 10 and not net._flags & (1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)):
                self._errors.append("Network must have explicit batch dimension (EXPLICIT_BATCH flag)")
                return False
            g = onnx.load_from_string(blob).graph
            inits = {t.name for t in g.initializer}

            def tensor(v: Any, is_input: bool) -> Any:
                tt = v.type.tensor_type
                name = ONNX_TO_TRT[tt.elem_type]
                if not hasattr(DT, name):
                    raise AssertionError(f"{name} is no DataType in TensorRT {version}")
                return ITensor(v.name, tuple(d.dim_value for d in tt.shape.dim), getattr(DT, name), is_input)

            net._inputs = [tensor(v, True) for v in g.input if v.name not in inits]
            net._outputs = [tensor(v, False) for v in g.output]
            net._nodes = [(n.name or n.output[0], n.op_type) for n in g.node]
            net._qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in g.node)
            net._fp16 = any(t.data_type == 10 for t in g.initializer)
            return True

    class ITimingCache(restricted("ITimingCache")):  # type: ignore[misc]
        def __init__(self, data: bytes) -> None:
            header = f"TC{version}|{gpu.name}|".encode()
            # 8.5 refuses a foreign cache in set_timing_cache; 10 and 11 drop it silently (an empty cache)
            self._bad = bool(data) and not data.startswith(header) and major < 10
            self._data = bytearray(data if data.startswith(header) else header)

        def serialize(self) -> bytes:
            return bytes(self._data)

        def combine(self, other: Any, ignore_mismatch: bool) -> bool:
            return True

        def reset(self) -> bool:
            return True

    class IBuilderConfig(restricted("IBuilderConfig")):  # type: ignore[misc]
        def __init__(self) -> None:
            self._flags: set = set()
            self._pools: Dict[Any, int] = {}
            self._cache = None
            if "builder_optimization_level" in classes["IBuilderConfig"]:
                self.builder_optimization_level = 3
            if "int8_calibrator" in classes["IBuilderConfig"]:
                self.int8_calibrator = None
            self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self._pools[pool] = size

        def get_memory_pool_limit(self, pool: Any) -> int:
            return self._pools[pool]

        def set_flag(self, flag: Any) -> None:
            self._flags.add(str(flag).split(".")[-1])

        def clear_flag(self, flag: Any) -> None:
            self._flags.discard(str(flag).split(".")[-1])

        def get_flag(self, flag: Any) -> bool:
            return str(flag).split(".")[-1] in self._flags

        def create_timing_cache(self, data: bytes) -> Any:
            return ITimingCache(bytes(data))

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            if cache._bad and not ignore_mismatch:
                return False
            self._cache = cache
            return True

        def get_timing_cache(self) -> Any:
            return self._cache

    def kernel_precision(net: Any, flags: set) -> str:
        if net._strongly_typed:
            return "int8" if net._qdq else ("fp16" if net._fp16 else "fp32")
        if net._qdq and "INT8" in flags:
            return "int8"
        return "fp16" if "FP16" in flags else "fp32"

    class Builder(restricted("Builder")):  # type: ignore[misc]
        def __init__(self, logger: Any) -> None:
            self._logger = logger
            self._built: List[Dict[str, Any]] = []

        def create_network(self, flags: int = 0) -> Any:
            return INetworkDefinition(flags)

        def create_builder_config(self) -> Any:
            return IBuilderConfig()

        def platform_has_fast_fp16(self) -> bool:
            return True

        def platform_has_fast_int8(self) -> bool:
            return True

        def build_serialized_network(self, net: Any, config: Any) -> Optional[bytes]:
            log = self._logger.errors
            if net._strongly_typed and config._flags & {"FP16", "INT8", "BF16", "FP8"}:
                log.append("precision flags are not allowed with a strongly typed network")
                return None
            if net._qdq and not net._strongly_typed and "INT8" not in config._flags:
                log.append("Q/DQ layers need BuilderFlag.INT8 in a weakly typed network")
                return None
            if config._cache is None:
                log.append("no timing cache set")
            precision = kernel_precision(net, config._flags)
            want = {"fp32": "FLOAT", "fp16": "HALF", "int8": "INT8"}[precision]
            io = []
            reformats = []
            vec = {"HALF": ("HWC8", 8), "INT8": ("CHW32", 32)}
            for t in net._inputs + net._outputs:
                if len(t.shape) != 4 and t.allowed_formats & ~(1 << int(fmt.LINEAR)):
                    log.append(f"{t.name}: vectorized formats need a 4-D tensor")
                    return None
                dname = str(t.dtype).split(".")[-1]
                f_name, comps = "LINEAR", 1
                if dname in vec and t.allowed_formats & (1 << int(getattr(fmt, vec[dname][0]))):
                    f_name, comps = vec[dname]
                io.append({"name": t.name, "shape": list(t.shape), "dtype": dname, "format": f_name,
                           "components": comps, "vec_dim": 1 if comps > 1 else -1, "input": t.is_network_input})
                if dname != want:  # the engine converts at its border: a reformat layer
                    reformats.append(f"Reformatting CopyNode for {'Input' if t.is_network_input else 'Output'} "
                                     f"Tensor 0 to {t.name}")
            layers = []
            pending: List[str] = []
            for name, op in net._nodes:
                if op in COMPUTE_OPS:
                    if pending:
                        layers.append(" + ".join(pending))
                    pending = [name]
                elif op in ("Relu", "Clip", "HardSwish", "Sigmoid", "Add", "Mul", "BatchNormalization") and pending:
                    pending.append(name)  # fused into the conv before it
            if pending:
                layers.append(" + ".join(pending))
            layer_us = {n: KERNEL_US[precision] for n in layers}
            layer_us.update({r: REFORMAT_US for r in reformats})
            if config._cache is not None:
                config._cache._data += b"tactics;"
            desc = {"version": version, "precision": precision, "io": io, "layers": layer_us,
                    "flags": sorted(config._flags)}
            self._built.append(desc)
            return b"FAKEPLAN" + json.dumps(desc).encode()

    class ICudaEngine(restricted("ICudaEngine")):  # type: ignore[misc]
        def __init__(self, desc: Dict[str, Any]) -> None:
            self._desc = desc
            # real engines list I/O in their own order: outputs first, inputs by name here (low before
            # x), not the export's order (x, low), so binding by position breaks
            self._io = sorted(desc["io"], key=lambda t: (t["input"], t["name"]))

        num_io_tensors = property(lambda self: len(self._io))
        num_layers = property(lambda self: len(self._desc["layers"]))
        device_memory_size = 1 << 20

        def _t(self, name: str) -> Dict[str, Any]:
            for t in self._io:
                if t["name"] == name:
                    return t
            raise KeyError(name)

        def get_tensor_name(self, i: int) -> str:
            return self._io[i]["name"]

        def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
            return tuple(self._t(name)["shape"])

        def get_tensor_dtype(self, name: str) -> Any:
            return getattr(DT, self._t(name)["dtype"])

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode.INPUT if self._t(name)["input"] else trt.TensorIOMode.OUTPUT

        def get_tensor_format(self, name: str) -> Any:
            return getattr(fmt, self._t(name)["format"])

        def get_tensor_vectorized_dim(self, name: str) -> int:
            return int(self._t(name)["vec_dim"])

        def get_tensor_components_per_element(self, name: str) -> int:
            return int(self._t(name)["components"])

        def get_tensor_bytes_per_component(self, name: str) -> int:
            return {"FLOAT": 4, "HALF": 2, "INT8": 1}[self._t(name)["dtype"]]

        def _nbytes(self, name: str) -> int:
            t = self._t(name)
            dims = list(t["shape"])
            if t["components"] > 1:
                dims[t["vec_dim"]] = -(-dims[t["vec_dim"]] // t["components"]) * t["components"]
            n = 1
            for d in dims:
                n *= d
            return n * self.get_tensor_bytes_per_component(name)

        def create_execution_context(self) -> Any:
            return IExecutionContext(self)

    class IExecutionContext(restricted("IExecutionContext")):  # type: ignore[misc]
        def __init__(self, engine: Any) -> None:
            self._engine = engine
            self._addr: Dict[str, int] = {}
            self.profiler: Any = None  # an IProfiler the backend sets
            self.enqueue_emits_profile = True

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            try:
                self._engine._t(name)
            except KeyError:
                return False
            self._addr[name] = int(ptr)
            return True

        def get_tensor_address(self, name: str) -> int:
            return self._addr.get(name, 0)

        def set_input_shape(self, name: str, shape: Any) -> bool:
            return tuple(shape) == self._engine.get_tensor_shape(name)

        def execute_async_v3(self, stream_handle: int) -> bool:
            eng = self._engine
            for t in eng._io:
                ptr = self._addr.get(t["name"])
                if ptr is None or gpu.memory.get(ptr, 0) < eng._nbytes(t["name"]):
                    return False
                if t["input"] and gpu.written.get(ptr) != eng._nbytes(t["name"]):
                    return False  # the input buffer does not hold this tensor's data
            layers = eng._desc["layers"]
            gpu.submit(stream_handle, sum(layers.values()), ENQUEUE_US)
            if self.profiler is not None and self.enqueue_emits_profile:
                gpu.sync(stream_handle)
                for name, us in layers.items():
                    self.profiler.report_layer_time(name, us / 1e3)
            return True

    class Runtime(restricted("Runtime")):  # type: ignore[misc]
        def __init__(self, logger: Any) -> None:
            self._logger = logger

        def deserialize_cuda_engine(self, blob: bytes) -> Any:
            if not bytes(blob).startswith(b"FAKEPLAN"):
                return None
            desc = json.loads(bytes(blob)[8:])
            if desc["version"] != version:
                return None  # engines do not cross TensorRT versions
            return ICudaEngine(desc)

    trt.Logger, trt.IProfiler, trt.Builder = Logger, IProfiler, Builder
    trt.Runtime, trt.OnnxParser = Runtime, OnnxParser
    if "IInt8EntropyCalibrator2" in surface["module"]:
        trt.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (), {"__init__": lambda self: None})
    return trt


# -- NVML and pycuda --------------------------------------------------------------------------


def make_nvml(gpu: FakeGpu, event_reasons: bool = True) -> Any:
    """pynvml's calls the agent makes (``nvmlDeviceGetCurrentClocksEventReasons`` from driver 535 on)."""

    class NVMLError(Exception):
        pass

    n = types.SimpleNamespace(NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2, NVML_TEMPERATURE_GPU=0, NVMLError=NVMLError)
    n.nvmlInit = lambda: None
    n.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    n.nvmlDeviceGetHandleByPciBusId = lambda bus: ("gpu", bus)
    n.nvmlDeviceGetClockInfo = lambda h, c: gpu.sm_mhz() if c == 1 else 2619
    n.nvmlDeviceGetMaxClockInfo = lambda h, c: gpu.max_mhz if c == 1 else 2619
    n.nvmlDeviceGetTemperature = lambda h, s: 61
    n.nvmlDeviceGetPowerUsage = lambda h: 412_000

    def power_fails(h: Any) -> int:
        raise NVMLError("Not Supported")

    reasons = lambda h: gpu.throttle_mask  # noqa: E731
    if event_reasons:
        n.nvmlDeviceGetCurrentClocksEventReasons = reasons
    n.nvmlDeviceGetCurrentClocksThrottleReasons = reasons
    n.power_fails = power_fails
    return n


def make_pycuda_driver(gpu: FakeGpu, capture: bool = True) -> Any:
    """``pycuda.driver`` as PyCudaRuntime uses it: init, Device, primary context, mem_alloc,
    memcpy_htod, Stream (handle, synchronize, begin/end_capture), Event (record, synchronize,
    time_since in ms)."""

    class DeviceAllocation(int):
        pass

    class Stream:
        def __init__(self) -> None:
            self.handle = gpu.new_stream()

        def synchronize(self) -> None:
            gpu.sync(self.handle)

    if capture:
        class GraphExec:
            def __init__(self, works: List[float]) -> None:
                self.works = works

            def launch(self, stream: Any) -> None:
                gpu.launch_graph(stream.handle, self.works)

        class Graph:
            def __init__(self, works: List[float]) -> None:
                self.works = works

            def instance(self) -> Any:
                return GraphExec(self.works)

        Stream.begin_capture = lambda self, mode=0: gpu.begin_capture(self.handle)  # type: ignore[attr-defined]
        Stream.end_capture = lambda self: Graph(gpu.end_capture(self.handle))  # type: ignore[attr-defined]

    class Event:
        def __init__(self, flags: int = 0) -> None:
            self.t: Optional[float] = None

        def record(self, stream: Any = None) -> Any:
            self.t = max(gpu.streams[stream.handle]["ready"], gpu.host)
            return self

        def synchronize(self) -> Any:
            gpu.host = max(gpu.host, self.t or 0.0)
            return self

        def time_since(self, start: Any) -> float:
            return (self.t - start.t) * 1e3

    class Context:
        pushed = 0

        def push(self) -> None:
            Context.pushed += 1

        def pop(self) -> None:
            Context.pushed -= 1

    class Device:
        def __init__(self, i: int) -> None:
            self.i = i

        @staticmethod
        def count() -> int:
            return 1

        def retain_primary_context(self) -> Any:
            return Context()

        def name(self) -> str:
            return gpu.name

        def compute_capability(self) -> Tuple[int, int]:
            major, minor = gpu.capability.split(".")
            return int(major), int(minor)

        def pci_bus_id(self) -> str:
            return "0000:3B:00.0"

        def get_attribute(self, a: str) -> int:
            return {"MULTIPROCESSOR_COUNT": gpu.sm_count, "CLOCK_RATE": gpu.max_mhz * 1000}[a]

    def mem_alloc(n: int) -> Any:
        return DeviceAllocation(gpu.alloc(n))

    def memcpy_htod(ptr: int, data: Any) -> None:
        if len(data) > gpu.memory[int(ptr)]:
            raise ValueError("memcpy past the allocation")
        gpu.written[int(ptr)] = len(data)

    attrs = types.SimpleNamespace(MULTIPROCESSOR_COUNT="MULTIPROCESSOR_COUNT", CLOCK_RATE="CLOCK_RATE")
    return types.SimpleNamespace(init=lambda flags=0: None, Device=Device, get_driver_version=lambda: 12080,
                                 Stream=Stream, Event=Event,
                                 mem_alloc=mem_alloc, memcpy_htod=memcpy_htod, device_attribute=attrs,
                                 Context=Context)
