"""The backends by name, each with the options it declares, so the CLI can offer them without importing
the backend (a machine without TensorRT still lists TensorRT's options and says why it cannot run)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class BackendOption:
    """One constructor keyword of a backend, as the command line offers it."""

    name: str
    type: Callable[[str], Any]  # int, float, str or bool (bool: a --x / --no-x pair)
    default: Any
    help: str
    choices: Optional[Tuple[Any, ...]] = None
    flag: Optional[str] = None  # the long option, when not --<name with dashes>

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class BackendEntry:
    name: str
    module: str
    cls: str
    options: Tuple[BackendOption, ...] = ()
    reads_root: bool = False  # takes ``root=``: clocks and power mode read under a filesystem root (fixtures)

    def option(self, name: str) -> Optional[BackendOption]:
        return next((o for o in self.options if o.name == name), None)


THREADS = BackendOption("threads", int, None, "CPU threads (recorded in the target)")
CUDA_GRAPHS = BackendOption(
    "cuda_graphs", bool, True,
    "time ops as CUDA graph replays (the default; --no-cuda-graphs or LUT_CUDA_GRAPHS=0 times back-to-back "
    "launches, host enqueue rate included)")
DEVICE_INDEX = BackendOption("device_index", int, 0, "CUDA device to time on (default 0)")
TF32 = BackendOption("tf32", bool, False, "allow TF32 for fp32 (changes the numbers; recorded in the target)")
GRAPH_K = BackendOption("graph_k", int, 16, "executions captured per CUDA graph (default 16)")
MAX_CACHED_OPS = BackendOption("max_cached_ops", int, 32, "built ops kept in memory between rounds (default 32)")

REGISTRY: Dict[str, BackendEntry] = {
    e.name: e
    for e in (
        BackendEntry("pytorch-cpu", "profiler_agent.backends.torch_cpu", "TorchCPUBackend", (
            THREADS,
            BackendOption("retain_memory", bool, True,
                          "keep freed heap memory, so allocation does not enter the numbers (default on)"),
        )),
        BackendEntry("pytorch-cuda", "profiler_agent.backends.torch_cuda", "TorchCUDABackend", (
            CUDA_GRAPHS, DEVICE_INDEX, TF32,
            BackendOption("cudnn_benchmark", bool, True, "let cuDNN pick its fastest algorithms (default on)"),
            GRAPH_K, MAX_CACHED_OPS,
        ), reads_root=True),
        BackendEntry("tensorrt", "profiler_agent.backends.tensorrt", "TensorRTBackend", (
            BackendOption("cache_dir", str, None, "engine and timing cache directory "
                          "(default $PROFILER_AGENT_CACHE/tensorrt)", flag="--engine-cache-dir"),
            BackendOption("workspace_mb", int, 1024, "builder workspace in MiB (default 1024)"),
            BackendOption("opt_level", int, None, "builder optimization level 0-5 (TensorRT >= 8.6; default 3)",
                          choices=(0, 1, 2, 3, 4, 5)),
            BackendOption("int8_range", float, 4.0, "int8: activations quantized to +-this range (default 4)"),
            TF32, DEVICE_INDEX,
            BackendOption("use_engine_cache", bool, True, "reuse engines built before (default on)"),
            CUDA_GRAPHS, GRAPH_K,
            BackendOption("runtime", str, None, "buffers and events from torch or pycuda (default: torch if it "
                          "has CUDA)", choices=("torch", "pycuda")),
            BackendOption("on_cache_reject", str, "rebuild", "a timing cache TensorRT rejects: rebuild it "
                          "(default) or stop", choices=("rebuild", "raise")),
            MAX_CACHED_OPS,
            BackendOption("profile_layers", bool, True, "record per-layer times of each engine (default on)"),
        ), reads_root=True),
        BackendEntry("onnxruntime", "profiler_agent.backends.onnxrt", "OnnxRuntimeBackend", (
            BackendOption("provider", str, "cpu", "execution provider (default cpu)",
                          choices=("cpu", "cuda", "tensorrt")),
            THREADS,
        )),
    )
}


def all_options() -> Dict[str, BackendOption]:
    """Every declared option by name (a name shared by backends means the same thing in each)."""
    out: Dict[str, BackendOption] = {}
    for entry in REGISTRY.values():
        for opt in entry.options:
            out.setdefault(opt.name, opt)
    return out
