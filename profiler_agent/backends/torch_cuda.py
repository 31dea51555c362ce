"""``pytorch-cuda``: torch on an NVIDIA GPU with cuDNN autotuning, timed in CUDA graphs with events.

CUDA graphs are on by default: one graph holds K forward passes, so the events around a launch
measure the GPU, not Python's dispatch (an un-graphed small op is timed at the host's pace;
``cuda_graphs=False`` keeps that mode, recorded as ``cuda_graphs=0`` in the target, and flags
enqueue-bound ops). Timing follows ``gpu_timing``; built modules and captured graphs stay in
memory per op (bounded) so the rounds of one op reuse them.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from lutcore.ops import OpSpec
from profiler_agent.backends.gpu_runtime import TorchRuntime
from profiler_agent.backends.gpu_timing import BoundedCache, GpuTimer, GpuTimingOptions
from profiler_agent.backends.torch_common import TorchBackend
from profiler_agent.timing import TimingProtocol, TimingResult


def set_tf32(torch: Any, on: bool) -> str:
    """TF32 for convolutions and matmuls through the current API (``fp32_precision``, torch >= 2.9),
    else the older switches; returns which API was used."""
    mm = torch.backends.cuda.matmul
    conv = getattr(torch.backends.cudnn, "conv", None)
    if hasattr(mm, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        mm.fp32_precision = "tf32" if on else "ieee"
        conv.fp32_precision = "tf32" if on else "ieee"
        return "fp32_precision"
    torch.set_float32_matmul_precision("high" if on else "highest")
    torch.backends.cudnn.allow_tf32 = on
    return "allow_tf32"


class _Op:
    """A built module with its inputs, stream, enqueue function and (once captured) graph."""

    def __init__(self, module: Any, inputs: Tuple[Any, ...], stream: Any, enqueue: Callable[[], None]) -> None:
        self.module, self.inputs, self.stream, self.enqueue = module, inputs, stream, enqueue
        self.graph: Optional[Callable[[], None]] = None
        self.graph_note: Optional[str] = None


class TorchCUDABackend(TorchBackend):
    name = "pytorch-cuda"
    precisions = ("fp32", "fp16")
    default_rounds = 1

    def __init__(
        self,
        precision: str = "fp32",
        cuda_graphs: bool = True,
        device_index: int = 0,
        tf32: bool = False,
        cudnn_benchmark: bool = True,
        graph_k: int = 16,
        root: str = "/",
        max_cached_ops: int = 32,
    ) -> None:
        import torch

        from profiler_agent.probe.gpu_clocks import clock_reader, power_mode

        super().__init__(precision)
        self.cuda_graphs = bool(cuda_graphs)
        self.tf32 = bool(tf32)
        self.device = f"cuda:{device_index}"
        torch.cuda.set_device(device_index)
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
        # fp32 means fp32 unless asked otherwise: TF32 (Ampere+) changes the numbers.
        self.tf32_api = set_tf32(torch, self.tf32)
        self.power_mode = power_mode(root)
        rt = TorchRuntime(device_index)
        self.gpu_timer = GpuTimer(
            rt, clock_reader(root, device_index, rt.device_info().get("pci_bus_id")),
            GpuTimingOptions(graphs=self.cuda_graphs, graph_k=graph_k),
        )
        self.ops = BoundedCache(max_cached_ops)

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        try:
            import torch
        except ImportError:
            return "torch is not installed"
        if not torch.cuda.is_available():
            return f"torch {torch.__version__} sees no CUDA GPU"
        return None

    def settings(self) -> Dict[str, str]:
        s: Dict[str, str] = {}
        if not self.cuda_graphs:
            s["cuda_graphs"] = "0"
        if self.tf32:
            s["tf32"] = "1"
        return s

    def versions(self) -> Dict[str, str]:
        import torch

        v = super().versions()
        v["gpu"] = torch.cuda.get_device_name(self.device)
        return v

    def _op(self, module: Any, inputs: Tuple[Any, ...]) -> _Op:
        import torch

        stream = torch.cuda.Stream(device=self.device)

        def enqueue() -> None:
            with torch.no_grad(), torch.cuda.stream(stream):
                module(*inputs)

        stream.wait_stream(torch.cuda.current_stream())
        for _ in range(3):  # side-stream warm-up before capture, as torch requires; cudnn picks algorithms
            enqueue()
        torch.cuda.synchronize()
        return _Op(module, inputs, stream, enqueue)

    def _time(
        self, key: str, build: Callable[[], Tuple[Any, Tuple[Any, ...]]], protocol: TimingProtocol
    ) -> TimingResult:
        op = self.ops.get(key)
        if op is None:
            op = self._op(*build())
            op.graph, op.graph_note = self.gpu_timer.prepare_graph(op.enqueue, op.stream)
            self.ops.put(key, op)
        return self.gpu_timer.time(op.enqueue, op.stream, protocol, op.graph, op.graph_note)

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        return self._time(spec.key, lambda: self.build_op(spec), protocol)

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        key = f"net:{arch.space.name}:{arch.choices}"
        return self._time(key, lambda: self.build_network(arch), protocol)

    def close(self) -> None:
        import torch

        self.ops.clear()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
