"""``tensorrt``: each op exported to ONNX, built into a TensorRT engine, timed with CUDA events.

Written against the API shared by TensorRT 8.5 (JetPack 5) through 10: ``build_serialized_network``,
``set_memory_pool_limit``, the named-tensor calls ``set_tensor_address`` / ``execute_async_v3``.
One timing cache serves every build of a run and is persisted next to the engines; engines are
cached on disk keyed by op key + TensorRT version + GPU + precision and build settings (see
``trt_config``). Device buffers are torch tensors on the GPU (so it coexists with torch's context),
and CUDA events on the same stream time the samples, as trtexec's GPU compute time does.
tensorrt is imported lazily: this module imports on any machine.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Optional, Tuple

from lutcore.ops import OpSpec
from profiler_agent.backends.base import Backend, check_timeable
from profiler_agent.backends.onnx_export import export_network, export_op
from profiler_agent.backends.trt_config import BuildSettings, CacheLayout, engine_key, gpu_id, write_atomic
from profiler_agent.timing import IntervalTimer, TimingProtocol, TimingResult, measure


class TensorRTError(RuntimeError):
    """An ONNX parse or engine build failed; the message carries TensorRT's own errors."""


class _StreamEventTimer(IntervalTimer):
    """CUDA events recorded on the stream the engine runs on."""

    def __init__(self, stream: Any) -> None:
        import torch

        self._stream = stream
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record(self._stream)

    def stop(self) -> float:
        self._end.record(self._stream)
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3


def _torch_dtype(trt: Any, dt: Any) -> Any:
    import torch

    table = {"FLOAT": torch.float32, "HALF": torch.float16, "INT8": torch.int8, "INT32": torch.int32}
    table.update({"BOOL": torch.bool, "INT64": torch.int64, "UINT8": torch.uint8})
    for name, tdt in table.items():
        if hasattr(trt.DataType, name) and dt == getattr(trt.DataType, name):
            return tdt
    raise TensorRTError(f"unsupported TensorRT tensor type {dt}")


def _make_calibrator(trt: Any, shapes: Dict[str, Tuple[int, ...]], batches: int) -> Any:
    """An entropy calibrator over random normal inputs (built here because its base class is trt's)."""
    import torch

    class RandomCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.left = batches
            self.bufs = {n: torch.empty(s, device="cuda", dtype=torch.float32) for n, s in shapes.items()}

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: List[str], *_: Any) -> Optional[List[int]]:
            if self.left <= 0:
                return None
            self.left -= 1
            for b in self.bufs.values():
                b.normal_()
            torch.cuda.synchronize()
            return [int(self.bufs[n].data_ptr()) for n in names]

        def read_calibration_cache(self, *_: Any) -> Optional[bytes]:
            return None

        def write_calibration_cache(self, cache: Any, *_: Any) -> None:
            return None

    return RandomCalibrator()


class TensorRTBackend(Backend):
    name = "tensorrt"
    precisions = ("fp32", "fp16", "int8")

    def __init__(
        self,
        precision: str = "fp32",
        cache_dir: Optional[str] = None,
        workspace_mb: int = 1024,
        opt_level: Optional[int] = None,
        int8_mode: str = "calibrate",
        int8_range: float = 4.0,
        tf32: bool = False,
        device_index: int = 0,
        use_engine_cache: bool = True,
    ) -> None:
        import torch

        settings = BuildSettings(
            precision=precision,
            workspace_mb=workspace_mb,
            opt_level=opt_level,
            int8_mode=int8_mode,
            int8_range=int8_range,
            tf32=tf32,
        )
        torch.cuda.set_device(device_index)
        self.device = torch.device("cuda", device_index)
        gpu = gpu_id(torch.cuda.get_device_name(device_index), torch.cuda.get_device_capability(device_index))
        self._setup(settings, gpu, cache_dir, use_engine_cache)

    def _setup(self, settings: BuildSettings, gpu: str, cache_dir: Optional[str], use_engine_cache: bool) -> None:
        """Everything but the CUDA device: TensorRT objects, cache layout, the shared timing cache."""
        import tensorrt as trt

        super().__init__(settings.precision)
        self.trt = trt
        self.build_settings = settings
        self.gpu = gpu
        self.trt_version = str(trt.__version__)
        self.layout = CacheLayout.at(cache_dir, self.trt_version, self.gpu)
        self.use_engine_cache = use_engine_cache
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.builder = trt.Builder(self.logger)
        self.runtime = trt.Runtime(self.logger)
        self._cache_config = self.builder.create_builder_config()
        data = self.layout.timing_cache.read_bytes() if self.layout.timing_cache.exists() else b""
        self.timing_cache = self._cache_config.create_timing_cache(data)
        self.builds = 0
        self.engine_hits = 0

    # -- identity -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return "the tensorrt Python package is not installed (it ships with JetPack / NVIDIA's wheels)"
        try:
            import torch
        except ImportError:
            return "torch is not installed (needed for the ONNX export and GPU buffers)"
        if not torch.cuda.is_available():
            return f"torch {torch.__version__} sees no CUDA GPU"
        return None

    def settings(self) -> Dict[str, str]:
        return self.build_settings.target_settings()

    def versions(self) -> Dict[str, str]:
        import torch

        return {"tensorrt": self.trt_version, "torch": str(torch.__version__), "gpu": self.gpu}

    # -- building ---------------------------------------------------------------------------
    def _network(self, onnx_bytes: bytes) -> Tuple[Any, Any]:
        trt = self.trt
        major = int(self.trt_version.split(".")[0])
        flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = self.builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_bytes):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise TensorRTError(f"TensorRT {self.trt_version} could not parse the ONNX export: {errs}")
        return network, parser

    def _config(self, network: Any) -> Any:
        trt, s = self.trt, self.build_settings
        config = self.builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, s.workspace_mb << 20)
        if s.opt_level is not None and hasattr(config, "builder_optimization_level"):
            config.builder_optimization_level = s.opt_level
        for f in s.builder_flags():
            config.set_flag(getattr(trt.BuilderFlag, f))
        for f in s.cleared_flags():
            if hasattr(trt.BuilderFlag, f):
                config.clear_flag(getattr(trt.BuilderFlag, f))
        config.set_timing_cache(self.timing_cache, False)
        if s.precision == "int8":
            if s.int8_mode == "ranges":
                self._set_ranges(network, s.int8_range)
            else:
                shapes = {}
                for i in range(network.num_inputs):
                    t = network.get_input(i)
                    shapes[t.name] = tuple(t.shape)
                # Keep a Python reference: TensorRT's binding does not keep the calibrator alive.
                self._calibrator = _make_calibrator(self.trt, shapes, s.calib_batches)
                config.int8_calibrator = self._calibrator
        return config

    def _set_ranges(self, network: Any, r: float) -> None:
        """Explicit dynamic ranges on every float tensor (inputs and layer outputs), no calibration."""
        fp32 = self.trt.DataType.FLOAT
        for i in range(network.num_inputs):
            network.get_input(i).set_dynamic_range(-r, r)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            for j in range(layer.num_outputs):
                t = layer.get_output(j)
                if t.dtype == fp32:
                    t.set_dynamic_range(-r, r)

    def build(self, onnx_bytes: bytes) -> bytes:
        """Serialized engine for an ONNX model under this backend's settings (updates the timing cache)."""
        network, parser = self._network(onnx_bytes)
        config = self._config(network)
        blob = self.builder.build_serialized_network(network, config)
        if blob is None:
            raise TensorRTError(f"TensorRT {self.trt_version} failed to build an engine (see its log above)")
        self.builds += 1
        self.save_timing_cache()
        del parser
        return bytes(blob)

    def engine_bytes(self, key_text: str, onnx_bytes_fn: Any) -> bytes:
        """Cached engine for ``key_text`` (an op key), built from ``onnx_bytes_fn()`` on a miss."""
        key = engine_key(key_text, self.trt_version, self.gpu, self.build_settings)
        path = self.layout.engine(key, self.precision)
        if self.use_engine_cache and path.exists():
            self.engine_hits += 1
            return path.read_bytes()
        blob = self.build(onnx_bytes_fn())
        if self.use_engine_cache:
            write_atomic(path, blob)
            info = {"op": key_text, "tensorrt": self.trt_version, "gpu": self.gpu}
            info.update(build=self.build_settings.key_fields())
            write_atomic(self.layout.engine_info(key, self.precision), json.dumps(info, indent=1).encode())
        return blob

    def save_timing_cache(self) -> None:
        write_atomic(self.layout.timing_cache, bytes(self.timing_cache.serialize()))

    # -- running ----------------------------------------------------------------------------
    def _time_engine(self, blob: bytes, inputs: Tuple[Any, ...], protocol: TimingProtocol) -> TimingResult:
        import torch

        trt = self.trt
        engine = self.runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise TensorRTError("TensorRT could not deserialize the engine (stale cache file?)")
        context = engine.create_execution_context()
        feeds = list(inputs)
        buffers = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            buf = torch.empty(shape, dtype=_torch_dtype(trt, engine.get_tensor_dtype(name)), device=self.device)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                buf.copy_(feeds.pop(0).reshape(shape))
            context.set_tensor_address(name, int(buf.data_ptr()))
            buffers.append(buf)
        stream = torch.cuda.Stream(device=self.device)
        handle = stream.cuda_stream

        def run() -> None:
            if not context.execute_async_v3(handle):
                raise TensorRTError("execute_async_v3 failed")

        torch.cuda.synchronize()
        try:
            return measure(run, protocol, sync=stream.synchronize, timer=_StreamEventTimer(stream))
        finally:
            stream.synchronize()

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        check_timeable(spec)
        exported: Dict[str, Any] = {}

        def onnx_bytes() -> bytes:
            exported["onnx"], exported["inputs"] = export_op(spec)
            return exported["onnx"]

        blob = self.engine_bytes(spec.key, onnx_bytes)
        if "inputs" not in exported:
            from lutcore.torch import example_inputs

            exported["inputs"] = example_inputs(spec)
        return self._time_engine(blob, exported["inputs"], protocol)

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        text = json.dumps({"space": arch.space.name, "res": list(arch.space.resolution), "choices": arch.choices})
        key_text = "net:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        onnx, inputs = export_network(arch)
        blob = self.engine_bytes(key_text, lambda: onnx)
        return self._time_engine(blob, inputs, protocol)

    def close(self) -> None:
        self.save_timing_cache()
