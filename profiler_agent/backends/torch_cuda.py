"""``pytorch-cuda``: torch on an NVIDIA GPU with cuDNN autotuning, timed with CUDA events.

``cuda_graphs=True`` captures one forward pass into a CUDA graph and times its replay, which
takes Python and kernel-launch overhead out (what a deployed, graph-captured network sees).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from lutcore.ops import OpSpec
from profiler_agent.backends.torch_common import TorchBackend
from profiler_agent.timing import IntervalTimer, TimingProtocol, TimingResult, measure


class CudaEventTimer(IntervalTimer):
    """Device-side elapsed time between two CUDA events on the current stream."""

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record()

    def stop(self) -> float:
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3


class TorchCUDABackend(TorchBackend):
    name = "pytorch-cuda"
    precisions = ("fp32", "fp16")

    def __init__(
        self,
        precision: str = "fp32",
        cuda_graphs: bool = False,
        device_index: int = 0,
        tf32: bool = False,
        cudnn_benchmark: bool = True,
    ) -> None:
        import torch

        super().__init__(precision)
        self.cuda_graphs = bool(cuda_graphs)
        self.tf32 = bool(tf32)
        self.device = f"cuda:{device_index}"
        torch.cuda.set_device(device_index)
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
        # fp32 means fp32 unless asked otherwise: TF32 (Ampere+) changes the numbers.
        torch.backends.cudnn.allow_tf32 = self.tf32
        torch.backends.cuda.matmul.allow_tf32 = self.tf32

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
        if self.cuda_graphs:
            s["cuda_graphs"] = "1"
        if self.tf32:
            s["tf32"] = "1"
        return s

    def versions(self) -> Dict[str, str]:
        import torch

        v = super().versions()
        v["gpu"] = torch.cuda.get_device_name(self.device)
        return v

    def _graph_fn(self, module: Any, inputs: Tuple[Any, ...]) -> Callable[[], None]:
        """Capture one forward into a CUDA graph (after side-stream warm-up, as torch requires)."""
        import torch

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # also lets cudnn.benchmark pick its algorithms before capture
                module(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            module(*inputs)
        torch.cuda.synchronize()
        return graph.replay

    def _time(self, module: Any, inputs: Tuple[Any, ...], protocol: TimingProtocol) -> TimingResult:
        import torch

        with torch.inference_mode():
            fn = self._graph_fn(module, inputs) if self.cuda_graphs else self.forward_fn(module, inputs)
            res = measure(fn, protocol, sync=torch.cuda.synchronize, timer=CudaEventTimer())
        del fn
        return res

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        return self._time(*self.build_op(spec), protocol)

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        return self._time(*self.build_network(arch), protocol)

    def close(self) -> None:
        import torch

        torch.cuda.synchronize()
        torch.cuda.empty_cache()
