"""``tensorrt``: each op exported to typed ONNX, built into an engine, timed in CUDA graphs with events.

Supports TensorRT 8.5 to 11 (``trt_api`` says why and what differs). The precision lives in the
ONNX (``typed_onnx``), so 8.5 (weakly typed, with the flags the typed model needs) and 10/11
(strongly typed) build the same kernels. Each per-op engine takes and gives its tensors in the
dtype and the formats its neighbours hand over in the deployed network at that precision, so
it counts no reformat the network does not have. Timing follows ``gpu_timing``: K executions
per CUDA graph, host enqueue time beside GPU time, warm-up until the clocks settle, clocks
read right after each op. Engines and the timing cache are cached on disk keyed by op, TensorRT
version, GPU, SM count, max clock, power mode and build settings; a timing cache TensorRT
rejects is moved aside loudly (or raises). Built engines and their captured graphs stay in
memory per op (bounded), so the rounds of one op do not rebuild or recapture.
Buffers and events come from torch when it has CUDA, else pycuda. tensorrt is imported lazily.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

from lutcore.ops import OpSpec
from profiler_agent.backends.base import Backend, check_timeable
from profiler_agent.backends.gpu_runtime import GpuRuntime, default_runtime, pycuda_problem, torch_has_cuda
from profiler_agent.backends.gpu_timing import BoundedCache, GpuTimer, GpuTimingOptions
from profiler_agent.backends.onnx_export import input_names
from profiler_agent.backends.trt_api import (
    check_supported,
    handover_format_mask,
    network_flags,
    set_flags,
    support_problem,
)
from profiler_agent.backends.trt_config import BuildSettings, CacheLayout, DeviceKey, engine_key, gpu_id, write_atomic
from profiler_agent.timing import TimingProtocol, TimingResult

log = logging.getLogger(__name__)

# TensorRT DataType member -> (numpy dtype name, bytes per element)
DTYPES = {
    "FLOAT": ("float32", 4), "HALF": ("float16", 2), "INT8": ("int8", 1), "INT32": ("int32", 4),
    "BOOL": ("bool", 1), "UINT8": ("uint8", 1), "INT64": ("int64", 8), "BF16": ("uint16", 2),
}
CACHE_REJECT = ("rebuild", "raise")


class TensorRTError(RuntimeError):
    """An ONNX parse, engine build or cache load failed; the message carries TensorRT's own errors."""


def dtype_of(trt: Any, dt: Any) -> Tuple[str, int]:
    for name, info in DTYPES.items():
        if hasattr(trt.DataType, name) and dt == getattr(trt.DataType, name):
            return info
    raise TensorRTError(f"unsupported TensorRT tensor type {dt}")


def tensor_nbytes(shape: Tuple[int, ...], itemsize: int, vec_dim: int = -1, components: int = 1) -> int:
    """Bytes of a tensor in a possibly vectorized format (the vectorized dim padded to ``components``)."""
    dims = [max(int(d), 1) for d in shape]
    if components > 1 and 0 <= vec_dim < len(dims):
        dims[vec_dim] = int(math.ceil(dims[vec_dim] / components)) * components
    n = 1
    for d in dims:
        n *= d
    return n * itemsize


def feed_bytes(array: Any, np_dtype: str, nbytes: int, int8_range: float) -> bytes:
    """An input's bytes in the engine's dtype, padded with zeros to its (vectorized) size.

    The values do not change the speed; vectorized layouts get the linear bytes, padded.
    """
    import numpy as np

    a = np.asarray(array, dtype=np.float32)
    if np_dtype == "int8":
        a = np.clip(np.round(a / (int8_range / 127.0)), -128, 127)
    data = a.astype(np_dtype).tobytes()
    return data[:nbytes] + b"\0" * max(0, nbytes - len(data))


@dataclasses.dataclass
class Prepared:
    """One engine ready to run: context, bound buffers, stream, and its captured graph once made."""

    engine: Any
    context: Any
    stream: Any
    enqueue: Callable[[], None]
    keep: List[Any]
    io: Dict[str, Dict[str, Any]]
    graph: Optional[Callable[[], None]] = None
    graph_note: Optional[str] = None
    addresses: Dict[str, int] = dataclasses.field(default_factory=dict)


class TensorRTBackend(Backend):
    name = "tensorrt"
    precisions = ("fp32", "fp16", "int8")
    default_rounds = 1

    def __init__(
        self,
        precision: str = "fp32",
        cache_dir: Optional[str] = None,
        workspace_mb: int = 1024,
        opt_level: Optional[int] = None,
        int8_range: float = 4.0,
        tf32: bool = False,
        device_index: int = 0,
        use_engine_cache: bool = True,
        cuda_graphs: bool = True,
        graph_k: int = 16,
        runtime: Optional[str] = None,
        root: str = "/",
        on_cache_reject: str = "rebuild",
        max_cached_ops: int = 32,
        profile_layers: bool = True,
    ) -> None:
        from profiler_agent.probe.gpu_clocks import clock_reader

        settings = BuildSettings(
            precision=precision, workspace_mb=workspace_mb, opt_level=opt_level, int8_range=int8_range, tf32=tf32
        )
        rt = default_runtime(device_index, runtime)
        self._setup(
            settings,
            rt,
            clock_reader(root, device_index, rt.device_info().get("pci_bus_id")),
            cache_dir,
            use_engine_cache=use_engine_cache,
            options=GpuTimingOptions(graphs=cuda_graphs, graph_k=graph_k),
            root=root,
            on_cache_reject=on_cache_reject,
            max_cached_ops=max_cached_ops,
            profile_layers=profile_layers,
        )

    def _setup(
        self,
        settings: BuildSettings,
        runtime: GpuRuntime,
        clocks: Any,
        cache_dir: Optional[str],
        use_engine_cache: bool = True,
        options: Optional[GpuTimingOptions] = None,
        root: str = "/",
        on_cache_reject: str = "rebuild",
        max_cached_ops: int = 32,
        profile_layers: bool = True,
    ) -> None:
        """Everything but choosing the device: TensorRT objects, device key, caches, the GPU timer."""
        import tensorrt as trt

        from profiler_agent.probe.gpu_clocks import power_mode

        check_supported(trt.__version__)
        if on_cache_reject not in CACHE_REJECT:
            raise ValueError(f"on_cache_reject={on_cache_reject!r} must be one of {', '.join(CACHE_REJECT)}")
        super().__init__(settings.precision)
        self.trt = trt
        self.build_settings = settings
        self.runtime_gpu = runtime
        self.trt_version = str(trt.__version__)
        info = runtime.device_info()
        cap = tuple(int(x) for x in str(info["capability"]).split("."))
        self.gpu = gpu_id(str(info["name"]), cap)
        self.gpu_name = str(info["name"])
        max_mhz = clocks.max_sm_mhz() if clocks is not None else None
        if max_mhz is None and info.get("clock_khz"):
            max_mhz = int(info["clock_khz"]) // 1000
        self.power_mode = power_mode(root)
        self.device_key = DeviceKey(
            sm_count=info.get("sm_count"),
            max_sm_mhz=max_mhz,
            power_mode=self.power_mode,
            versions=tuple(
                (k, str(v)) for k, v in (("runtime", runtime.name), ("tensorrt", self.trt_version),
                                         ("cuda", info.get("cuda")), ("cuda_driver", info.get("cuda_driver"))) if v
            ),
        )
        self.layout = CacheLayout.at(cache_dir, self.trt_version, self.gpu, self.device_key)
        self.use_engine_cache = use_engine_cache
        self.on_cache_reject = on_cache_reject
        self.profile_layers = profile_layers
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.builder = trt.Builder(self.logger)
        self.runtime = trt.Runtime(self.logger)
        self.builds = 0
        self.engine_hits = 0
        self.exports = 0
        self.cache_rejected = False
        self.timing_cache = self._load_timing_cache()
        self.gpu_timer = GpuTimer(runtime, clocks, options)
        self.prepared = BoundedCache(max_cached_ops)

    # -- identity -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        try:
            import tensorrt
        except ImportError:
            return "the tensorrt Python package is not installed (it ships with JetPack / NVIDIA's wheels)"
        problem = support_problem(getattr(tensorrt, "__version__", "?"))
        if problem is not None:
            return problem
        if torch_has_cuda():
            return None
        pyc = pycuda_problem()
        if pyc is None:
            return None
        return f"no CUDA runtime for buffers and events: torch has no CUDA and {pyc}"

    def settings(self) -> Dict[str, str]:
        s = self.build_settings.target_settings()
        if not self.gpu_timer.options.graphs:
            s["cuda_graphs"] = "0"
        return s

    def versions(self) -> Dict[str, str]:
        v = {"tensorrt": self.trt_version, "gpu": self.gpu, "runtime": self.runtime_gpu.name}
        try:
            import torch

            v["torch"] = str(torch.__version__)
        except ImportError:
            pass
        return v

    # -- the timing cache -------------------------------------------------------------------
    def _load_timing_cache(self) -> Any:
        """The persisted timing cache; one TensorRT rejects is moved aside and rebuilt, loudly (or raises)."""
        path = self.layout.timing_cache
        data = path.read_bytes() if path.exists() else b""
        self._cache_config = self.builder.create_builder_config()
        cache = self._cache_config.create_timing_cache(data)
        ok = cache is not None and self._cache_config.set_timing_cache(cache, False)
        if ok and data:
            # Some versions drop a blob they cannot use and hand back an empty cache without a word:
            # a cache that re-serializes to no more than an empty one's size was rejected too.
            empty = len(bytes(self._cache_config.create_timing_cache(b"").serialize()))
            ok = len(data) <= empty or len(bytes(cache.serialize())) > empty
        if ok or not data:
            return cache
        msg = (
            f"TensorRT {self.trt_version} rejected the timing cache {path} ({len(data)} bytes; "
            "written by another TensorRT version or device?)"
        )
        if self.on_cache_reject == "raise":
            raise TensorRTError(msg + "; delete it or run with on_cache_reject='rebuild'")
        aside = path.with_name(path.name + ".rejected")
        path.replace(aside)
        log.warning("%s; moved to %s, starting an empty timing cache", msg, aside)
        self.cache_rejected = True
        cache = self._cache_config.create_timing_cache(b"")
        if cache is None or not self._cache_config.set_timing_cache(cache, False):
            raise TensorRTError(msg + "; and an empty timing cache could not be created either")
        return cache

    def save_timing_cache(self) -> None:
        write_atomic(self.layout.timing_cache, bytes(self.timing_cache.serialize()))

    # -- building ---------------------------------------------------------------------------
    def _network(self, onnx_bytes: bytes) -> Tuple[Any, Any]:
        trt = self.trt
        network = self.builder.create_network(network_flags(trt))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_bytes):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise TensorRTError(f"TensorRT {self.trt_version} could not parse the ONNX export: {errs}")
        return network, parser

    def _config(self, network: Any, per_op: bool) -> Any:
        trt, s = self.trt, self.build_settings
        config = self.builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, s.workspace_mb << 20)
        if s.opt_level is not None and hasattr(config, "builder_optimization_level"):
            config.builder_optimization_level = s.opt_level
        set_flags(trt, config, s.precision, s.tf32)
        if not config.set_timing_cache(self.timing_cache, False):
            raise TensorRTError(f"TensorRT {self.trt_version} refused this run's timing cache for a build")
        if per_op:  # take and give what the neighbours hand over at this precision
            mask = handover_format_mask(trt, s.precision)
            linear = 1 << int(trt.TensorFormat.LINEAR)
            io = [network.get_input(i) for i in range(network.num_inputs)]
            io += [network.get_output(i) for i in range(network.num_outputs)]
            for t in io:  # vectorized formats exist for 4-D (NCHW) tensors only
                t.allowed_formats = mask if len(tuple(t.shape)) == 4 else linear
        return config

    def build(self, onnx_bytes: bytes, per_op: bool = True) -> bytes:
        """Serialized engine for a typed ONNX model under this backend's settings (updates the timing cache)."""
        network, parser = self._network(onnx_bytes)
        config = self._config(network, per_op)
        blob = self.builder.build_serialized_network(network, config)
        if blob is None:
            raise TensorRTError(f"TensorRT {self.trt_version} failed to build an engine (see its log above)")
        self.builds += 1
        self.save_timing_cache()
        del parser
        return bytes(blob)

    def engine_bytes(self, key_text: str, onnx_bytes_fn: Callable[[], bytes], per_op: bool = True) -> bytes:
        """Cached engine for ``key_text``, built from ``onnx_bytes_fn()`` (typed ONNX) only on a miss."""
        key = engine_key(key_text, self.trt_version, self.gpu, self.build_settings, self.device_key)
        path = self.layout.engine(key, self.precision)
        if self.use_engine_cache and path.exists():
            self.engine_hits += 1
            return path.read_bytes()
        blob = self.build(onnx_bytes_fn(), per_op)
        if self.use_engine_cache:
            write_atomic(path, blob)
            info = {"op": key_text, "tensorrt": self.trt_version, "gpu": self.gpu, "device": self.device_key.fields()}
            info.update(build=self.build_settings.key_fields())
            write_atomic(self.layout.engine_info(key, self.precision), json.dumps(info, indent=1).encode())
        return blob

    def _typed(self, onnx_bytes: bytes) -> bytes:
        from profiler_agent.backends.typed_onnx import to_int8_qdq, typed

        self.exports += 1
        if self.precision == "int8":
            return to_int8_qdq(onnx_bytes, self.build_settings.int8_range)
        return typed(onnx_bytes, self.precision)

    # -- running ----------------------------------------------------------------------------
    def _deserialize(self, blob: bytes) -> Any:
        engine = self.runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise TensorRTError("TensorRT could not deserialize the engine (a stale cache file?)")
        return engine

    def prepare(self, blob: bytes, feeds: Dict[str, Any]) -> Prepared:
        """Context, buffers bound by tensor name, stream; one execution run (lazy allocations done)."""
        trt, rt = self.trt, self.runtime_gpu
        engine = self._deserialize(blob)
        context = engine.create_execution_context()
        stream = rt.new_stream()
        keep: List[Any] = []
        io: Dict[str, Dict[str, Any]] = {}
        addresses: Dict[str, int] = {}
        inputs = set()
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            np_dtype, itemsize = dtype_of(trt, engine.get_tensor_dtype(name))
            shape = tuple(engine.get_tensor_shape(name))
            nbytes = tensor_nbytes(
                shape, itemsize, engine.get_tensor_vectorized_dim(name), engine.get_tensor_components_per_element(name)
            )
            ptr, handle = rt.alloc(nbytes)
            keep.append(handle)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input:
                if name not in feeds:
                    raise TensorRTError(f"engine input {name!r} has no feed (feeds: {', '.join(sorted(feeds))})")
                fed = tuple(getattr(feeds[name], "shape", ()))
                if fed != shape:
                    raise TensorRTError(f"feed for engine input {name!r} has shape {fed}, the engine wants {shape}")
                rt.upload(ptr, feed_bytes(feeds[name], np_dtype, nbytes, self.build_settings.int8_range))
                inputs.add(name)
            if not context.set_tensor_address(name, ptr):
                raise TensorRTError(f"TensorRT refused the address of tensor {name!r}")
            addresses[name] = ptr
            io[name] = {
                "mode": "input" if is_input else "output",
                "dtype": np_dtype,
                "format": str(engine.get_tensor_format(name)).split(".")[-1],
                "shape": list(shape),
            }
        unused = sorted(set(feeds) - inputs)
        if unused:
            raise TensorRTError(f"feeds {unused} match no engine input (inputs: {sorted(inputs)})")
        handle = rt.stream_handle(stream)

        def enqueue() -> None:
            if not context.execute_async_v3(handle):
                raise TensorRTError("execute_async_v3 failed")

        enqueue()
        rt.synchronize(stream)
        return Prepared(engine, context, stream, enqueue, keep, io, addresses=addresses)

    def _run(self, prep: Prepared, protocol: TimingProtocol) -> TimingResult:
        if prep.graph is None and prep.graph_note is None:
            prep.graph, prep.graph_note = self.gpu_timer.prepare_graph(prep.enqueue, prep.stream)
        res = self.gpu_timer.time(prep.enqueue, prep.stream, protocol, prep.graph, prep.graph_note)
        res.env["io"] = prep.io
        res.env["engine"] = {"tensorrt": self.trt_version, "device_key": self.layout.device.dirname()}
        return res

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        check_timeable(spec)
        prep = self.prepared.get(spec.key)
        if prep is None:
            from lutcore.torch import example_inputs
            from profiler_agent.backends.onnx_export import export_op

            blob = self.engine_bytes(spec.key, lambda: self._typed(export_op(spec)[0]))
            inputs = example_inputs(spec)
            feeds = {n: t.numpy() for n, t in zip(input_names(len(inputs)), inputs)}
            prep = self.prepare(blob, feeds)
            self.prepared.put(spec.key, prep)
        return self._run(prep, protocol)

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        from lutcore.torch import network_input

        text = json.dumps({"space": arch.space.name, "res": list(arch.space.resolution), "choices": arch.choices})
        key_text = "net:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        prep = self.prepared.get(key_text)
        if prep is None:
            from profiler_agent.backends.onnx_export import export_network

            # exported only when the engine is not cached
            blob = self.engine_bytes(key_text, lambda: self._typed(export_network(arch)[0]), per_op=False)
            prep = self.prepare(blob, {"x": network_input(arch).numpy()})
            self.prepared.put(key_text, prep)
        res = self._run(prep, protocol)
        if self.profile_layers:
            res.env["in_context"] = self.layer_profile(prep, arch)
        return res

    def layer_profile(self, prep: Prepared, arch: Any, runs: int = 10) -> Dict[str, Any]:
        """Per-block in-context ms of the whole-network engine (IProfiler, own context, after timing)."""
        from profiler_agent.backends.trt_profile import attribute, make_profiler

        context = prep.engine.create_execution_context()
        for name, ptr in prep.addresses.items():
            context.set_tensor_address(name, ptr)
        prof = make_profiler(self.trt)
        context.profiler = prof
        handle = self.runtime_gpu.stream_handle(prep.stream)
        for _ in range(runs):
            if not context.execute_async_v3(handle):
                raise TensorRTError("execute_async_v3 failed while profiling layers")
            self.runtime_gpu.synchronize(prep.stream)
            prof.runs += 1
        return attribute(prof.mean(), arch)

    def close(self) -> None:
        self.prepared.clear()
        self.save_timing_cache()
        close = getattr(self.runtime_gpu, "close", None)
        if close is not None:
            close()
