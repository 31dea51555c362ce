"""What the two torch backends share: building an op or a network on a device, in eval mode."""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from lutcore.ops import OpSpec
from profiler_agent.backends.base import Backend, check_timeable

DTYPES = {"fp32": "float32", "fp16": "float16"}


def torch_versions() -> Dict[str, str]:
    import torch

    out = {"torch": str(torch.__version__)}
    if torch.version.cuda:
        out["cuda"] = str(torch.version.cuda)
    if torch.backends.cudnn.is_available():
        out["cudnn"] = str(torch.backends.cudnn.version())
    return out


class TorchBackend(Backend):
    """Runs ``lutcore.torch`` modules; subclasses pick the device and the timing hooks."""

    device = "cpu"

    @property
    def dtype(self) -> Any:
        import torch

        return getattr(torch, DTYPES[self.precision])

    def versions(self) -> Dict[str, str]:
        return torch_versions()

    def build_op(self, spec: OpSpec) -> Tuple[Any, Tuple[Any, ...]]:
        """(module, inputs) on this backend's device and dtype, module in eval mode."""
        from lutcore.torch import build_op, example_inputs

        check_timeable(spec)
        module = build_op(spec).eval().to(device=self.device, dtype=self.dtype)
        return module, example_inputs(spec, device=self.device, dtype=self.dtype)

    def build_network(self, arch: Any) -> Tuple[Any, Tuple[Any, ...]]:
        from lutcore.torch import build_network, network_input

        module = build_network(arch).eval().to(device=self.device, dtype=self.dtype)
        return module, (network_input(arch, device=self.device, dtype=self.dtype),)

    @staticmethod
    def forward_fn(module: Any, inputs: Tuple[Any, ...]) -> Callable[[], None]:
        def fn() -> None:
            module(*inputs)

        return fn
