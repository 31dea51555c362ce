"""``pytorch-cpu``: eager torch on the CPU, a monotonic clock, the thread count fixed and recorded."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from lutcore.ops import OpSpec
from profiler_agent.backends.base import REFERENCE_OP
from profiler_agent.backends.malloc import memory_retained, retain_freed_memory
from profiler_agent.backends.torch_common import TorchBackend
from profiler_agent.timing import TimingProtocol, TimingResult, measure


class TorchCPUBackend(TorchBackend):
    name = "pytorch-cpu"
    precisions = ("fp32",)
    device = "cpu"

    def __init__(self, precision: str = "fp32", threads: Optional[int] = None, retain_memory: bool = True) -> None:
        """``retain_memory``: keep freed heap memory (see ``malloc``); off leaves malloc as it is.

        The target records ``malloc=default`` whenever the process does not retain memory.
        """
        import torch

        super().__init__(precision)
        if threads is not None and threads < 1:
            raise ValueError(f"threads={threads} must be at least 1")
        self.retain_memory = retain_freed_memory() if retain_memory else memory_retained()
        if threads is not None:
            torch.set_num_threads(int(threads))
        # Read back what torch actually uses: that is what the numbers depend on.
        self.threads = int(torch.get_num_threads())

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "torch is not installed"
        return None

    def settings(self) -> Dict[str, str]:
        s = {"threads": str(self.threads)}
        if not self.retain_memory:
            s["malloc"] = "default"
        return s

    def _time(self, module: Any, inputs: Any, protocol: TimingProtocol) -> TimingResult:
        import torch

        with torch.inference_mode():
            return measure(self.forward_fn(module, inputs), protocol, reference=self.reference)

    def reference_workload(self) -> Callable[[], None]:
        import torch

        fn = self.forward_fn(*self.build_op(REFERENCE_OP))

        def run() -> None:
            with torch.inference_mode():
                fn()

        return run

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        return self._time(*self.build_op(spec), protocol)

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        return self._time(*self.build_network(arch), protocol)
