"""``onnxruntime``: the op's ONNX export timed in ONNX Runtime.

CPU provider by default; ``provider="cuda"`` or ``"tensorrt"`` where ONNX Runtime has them
(inputs and outputs then stay on the GPU through I/O binding, so no host copies are timed).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from lutcore.ops import OpSpec
from profiler_agent.backends.base import REFERENCE_OP, Backend, BackendUnavailable, check_timeable
from profiler_agent.backends.malloc import retain_freed_memory
from profiler_agent.backends.onnx_export import export_network, export_op, input_names
from profiler_agent.timing import TimingProtocol, TimingResult, measure

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    precisions = ("fp32",)

    def __init__(self, precision: str = "fp32", provider: str = "cpu", threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        super().__init__(precision)
        if provider not in PROVIDERS:
            raise ValueError(f"provider {provider!r} must be one of {', '.join(PROVIDERS)}")
        if PROVIDERS[provider] not in ort.get_available_providers():
            raise BackendUnavailable(
                f"ONNX Runtime {ort.__version__} has no {PROVIDERS[provider]}; it has {ort.get_available_providers()}"
            )
        if threads is not None and threads < 1:
            raise ValueError(f"threads={threads} must be at least 1")
        self.provider = provider
        self.threads = threads
        retain_freed_memory()  # the export and the inputs live on the same heap as the torch backends

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        try:
            import onnxruntime  # noqa: F401
            import torch  # noqa: F401  (the export needs it)
        except ImportError as e:
            return f"{e.name} is not installed"
        return None

    def settings(self) -> Dict[str, str]:
        s = {"ep": self.provider}
        if self.threads is not None:
            s["threads"] = str(self.threads)
        return s

    def versions(self) -> Dict[str, str]:
        import onnxruntime as ort
        import torch

        return {"onnxruntime": str(ort.__version__), "torch": str(torch.__version__)}

    def session(self, onnx_bytes: bytes) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads is not None:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = [PROVIDERS[self.provider]]
        if self.provider != "cpu":
            providers.append("CPUExecutionProvider")
        return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=providers)

    def _runner(self, sess: Any, inputs: Tuple[Any, ...]) -> Callable[[], None]:
        import onnxruntime as ort

        names = input_names(len(inputs))
        arrays = [t.detach().cpu().numpy() for t in inputs]
        if self.provider == "cpu":
            feed = dict(zip(names, arrays))

            def run() -> None:
                sess.run(None, feed)

            return run
        binding = sess.io_binding()
        for n, a in zip(names, arrays):
            binding.bind_ortvalue_input(n, ort.OrtValue.ortvalue_from_numpy(a, "cuda", 0))
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cuda")

        def run_bound() -> None:
            sess.run_with_iobinding(binding)

        return run_bound

    def _time(self, onnx_bytes: bytes, inputs: Tuple[Any, ...], protocol: TimingProtocol) -> TimingResult:
        sess = self.session(onnx_bytes)
        try:
            return measure(self._runner(sess, inputs), protocol, reference=self.reference)
        finally:
            del sess

    def reference_workload(self) -> Callable[[], None]:
        if self.provider != "cpu":
            return super().reference_workload()
        onnx_bytes, inputs = export_op(REFERENCE_OP)
        return self._runner(self.session(onnx_bytes), inputs)

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        check_timeable(spec)
        return self._time(*export_op(spec), protocol)

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        return self._time(*export_network(arch), protocol)
