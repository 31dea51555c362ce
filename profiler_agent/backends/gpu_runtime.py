"""Device buffers, streams, events and CUDA-graph capture, through torch or through pycuda.

TensorRT-only images (a JetPack container with TensorRT but a CPU torch, or no torch) get
pycuda; everywhere else torch's CUDA runtime is used, so the agent and torch share one context.
Both give the same small interface, which the GPU timing loop and the fakes in the tests use.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, Callable, Dict, Optional, Tuple


class GraphsUnavailable(RuntimeError):
    """This runtime cannot capture CUDA graphs here (too old a pycuda, capture refused, ...)."""


class Event(abc.ABC):
    @abc.abstractmethod
    def record(self, stream: Any) -> None: ...

    @abc.abstractmethod
    def synchronize(self) -> None: ...

    @abc.abstractmethod
    def ms_since(self, start: Event) -> float:
        """Device time from ``start`` to this event, in ms."""


class GpuRuntime(abc.ABC):
    name = ""

    @abc.abstractmethod
    def new_stream(self) -> Any: ...

    @abc.abstractmethod
    def stream_handle(self, stream: Any) -> int:
        """The ``cudaStream_t`` as an int, as ``execute_async_v3`` takes it."""

    @abc.abstractmethod
    def alloc(self, nbytes: int) -> Tuple[int, Any]:
        """(device pointer, the object keeping it alive)."""

    @abc.abstractmethod
    def upload(self, ptr: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def new_event(self) -> Event: ...

    @abc.abstractmethod
    def synchronize(self, stream: Any) -> None: ...

    @abc.abstractmethod
    def capture(self, stream: Any, work: Callable[[], None]) -> Callable[[], None]:
        """Capture ``work`` (enqueues on ``stream``) into a CUDA graph; returns its launcher on ``stream``."""

    @abc.abstractmethod
    def device_info(self) -> Dict[str, Any]:
        """name, capability 'X.Y', sm_count, and clock_khz where the runtime knows it."""


# -- torch ------------------------------------------------------------------------------------


class _TorchEvent(Event):
    def __init__(self, torch: Any) -> None:
        self.ev = torch.cuda.Event(enable_timing=True)

    def record(self, stream: Any) -> None:
        self.ev.record(stream)

    def synchronize(self) -> None:
        self.ev.synchronize()

    def ms_since(self, start: Event) -> float:
        assert isinstance(start, _TorchEvent)
        return float(start.ev.elapsed_time(self.ev))


class TorchRuntime(GpuRuntime):
    name = "torch"

    def __init__(self, device_index: int = 0) -> None:
        import torch

        self.torch = torch
        self.index = device_index
        self._bufs: Dict[int, Any] = {}
        torch.cuda.set_device(device_index)

    def new_stream(self) -> Any:
        return self.torch.cuda.Stream(device=self.index)

    def stream_handle(self, stream: Any) -> int:
        return int(stream.cuda_stream)

    def alloc(self, nbytes: int) -> Tuple[int, Any]:
        buf = self.torch.empty(max(nbytes, 1), dtype=self.torch.uint8, device=f"cuda:{self.index}")
        ptr = int(buf.data_ptr())
        self._bufs[ptr] = buf
        return ptr, _Release(self._bufs, ptr)

    def upload(self, ptr: int, data: bytes) -> None:
        torch = self.torch
        self._bufs[ptr][: len(data)].copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))

    def new_event(self) -> Event:
        return _TorchEvent(self.torch)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def capture(self, stream: Any, work: Callable[[], None]) -> Callable[[], None]:
        torch = self.torch
        graph = torch.cuda.CUDAGraph()
        kwargs: Dict[str, Any] = {"stream": stream}
        if "capture_error_mode" in inspect.signature(torch.cuda.graph).parameters:
            kwargs["capture_error_mode"] = "thread_local"  # TensorRT may query its own stream state
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, **kwargs):
            work()
        torch.cuda.synchronize()

        def launch() -> None:
            with torch.cuda.stream(stream):
                graph.replay()

        setattr(launch, "graph", graph)  # noqa: B010  (kept alive with the launcher)
        return launch

    def device_info(self) -> Dict[str, Any]:
        p = self.torch.cuda.get_device_properties(self.index)
        info: Dict[str, Any] = {"name": p.name, "capability": f"{p.major}.{p.minor}"}
        info["sm_count"] = p.multi_processor_count
        clock = getattr(p, "clock_rate", None)  # kHz, newer torch only
        if clock:
            info["clock_khz"] = int(clock)
        if self.torch.version.cuda:
            info["cuda"] = str(self.torch.version.cuda)
        bus, dev = getattr(p, "pci_bus_id", None), getattr(p, "pci_device_id", 0)
        if bus is not None:  # torch >= 2.3: the same GPU for NVML
            info["pci_bus_id"] = f"{getattr(p, 'pci_domain_id', 0):08x}:{bus:02x}:{dev:02x}.0"
        return info


class _Release:
    """Keeps a torch allocation registered (for ``upload``) until the engine's buffers are dropped."""

    def __init__(self, table: Dict[int, Any], ptr: int) -> None:
        self.table, self.ptr = table, ptr

    def __del__(self) -> None:
        self.table.pop(self.ptr, None)


# -- pycuda -----------------------------------------------------------------------------------


class _PyCudaEvent(Event):
    def __init__(self, cuda: Any) -> None:
        self.ev = cuda.Event()

    def record(self, stream: Any) -> None:
        self.ev.record(stream)

    def synchronize(self) -> None:
        self.ev.synchronize()

    def ms_since(self, start: Event) -> float:
        assert isinstance(start, _PyCudaEvent)
        return float(self.ev.time_since(start.ev))


class PyCudaRuntime(GpuRuntime):
    """pycuda on the device's primary context (the one TensorRT's runtime API uses)."""

    name = "pycuda"

    def __init__(self, device_index: int = 0) -> None:
        import pycuda.driver as cuda

        cuda.init()
        self.cuda = cuda
        self.device = cuda.Device(device_index)
        self.context = self.device.retain_primary_context()
        self.context.push()

    def new_stream(self) -> Any:
        return self.cuda.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def alloc(self, nbytes: int) -> Tuple[int, Any]:
        mem = self.cuda.mem_alloc(max(nbytes, 1))
        return int(mem), mem

    def upload(self, ptr: int, data: bytes) -> None:
        self.cuda.memcpy_htod(ptr, data)

    def new_event(self) -> Event:
        return _PyCudaEvent(self.cuda)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def capture(self, stream: Any, work: Callable[[], None]) -> Callable[[], None]:
        begin = getattr(stream, "begin_capture", None)
        if begin is None:
            raise GraphsUnavailable("this pycuda has no stream capture (pycuda >= 2022.1 does)")
        begin()
        try:
            work()
        finally:
            graph = stream.end_capture()
        instantiate = getattr(graph, "instance", None) or getattr(graph, "instantiate", None)
        exe = instantiate() if instantiate is not None else graph

        def launch() -> None:
            exe.launch(stream)

        launch.graph = (graph, exe)  # type: ignore[attr-defined]
        return launch

    def device_info(self) -> Dict[str, Any]:
        a = self.cuda.device_attribute
        major, minor = self.device.compute_capability()
        info = {
            "name": self.device.name(),
            "capability": f"{major}.{minor}",
            "sm_count": int(self.device.get_attribute(a.MULTIPROCESSOR_COUNT)),
            "clock_khz": int(self.device.get_attribute(a.CLOCK_RATE)),
        }
        version = getattr(self.cuda, "get_driver_version", None)
        if version is not None:
            info["cuda_driver"] = str(version())
        bus = getattr(self.device, "pci_bus_id", None)
        if bus is not None:
            info["pci_bus_id"] = str(bus())
        return info

    def close(self) -> None:
        self.context.pop()


def torch_has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pycuda_problem() -> Optional[str]:
    try:
        import pycuda.driver as cuda
    except ImportError:
        return "pycuda is not installed"
    try:
        cuda.init()
        if cuda.Device.count() < 1:
            return "pycuda sees no CUDA device"
    except Exception as e:  # noqa: BLE001 - any driver error means "cannot run here"
        return f"pycuda cannot initialise CUDA: {e}"
    return None


def default_runtime(device_index: int = 0, prefer: Optional[str] = None) -> GpuRuntime:
    """torch when it has CUDA, else pycuda (``prefer`` forces one: 'torch' or 'pycuda')."""
    if prefer == "pycuda" or (prefer is None and not torch_has_cuda()):
        return PyCudaRuntime(device_index)
    return TorchRuntime(device_index)
