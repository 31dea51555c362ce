"""Keep freed heap memory in the process, so CPU timings do not depend on malloc's history.

With glibc's defaults, a large tensor is served by mmap (or from the top of the heap, which is
trimmed back to the OS when freed), so every forward pass page-faults its activations in again
and the kernel zeroes them: on this project's test machine that made one 128x256 op 4x slower in
one process than in another, depending on malloc's adaptive thresholds. Real deployments keep
memory (PyTorch's CUDA allocator, ONNX Runtime's arena, jemalloc/tcmalloc), so the agent does the
same for the CPU heap: no mmap for large blocks, no trimming. Process-wide, Linux/glibc only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_state = {"done": False, "ok": False}


def retain_freed_memory() -> bool:
    """Set glibc's mallopt so freed memory is reused, never returned; True if it took effect."""
    if _state["done"]:
        return _state["ok"]
    ok = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (musl has no mallopt)
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            ok = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    _state.update(done=True, ok=ok)
    return ok


def memory_retained() -> bool:
    """Whether ``retain_freed_memory`` has taken effect in this process."""
    return bool(_state["ok"])
