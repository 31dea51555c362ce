"""The CPU backends keep freed heap memory, so timings do not include page faults of fresh activations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CYCLES = """
import ctypes, resource, sys
from profiler_agent.backends.malloc import retain_freed_memory
if sys.argv[1] == "1":
    assert retain_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
n = 64 << 20
def cycle():  # what a forward pass does with a large activation: allocate, write, free
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
cycle()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(retain: bool) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CYCLES, "1" if retain else "0"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_freed_memory_is_reused_without_page_faults():
    pages = (64 << 20) // 4096
    assert _faults(retain=False) >= 4 * pages  # glibc's default: mmap and fault in every time
    assert _faults(retain=True) < pages // 10


def test_pytorch_cpu_target_says_when_memory_is_not_retained():
    import torch

    from profiler_agent.backends import get_backend
    from profiler_agent.backends.malloc import memory_retained
    from profiler_agent.backends.torch_cpu import TorchCPUBackend

    n = torch.get_num_threads()
    try:
        b = get_backend("pytorch-cpu", threads=1)
        assert isinstance(b, TorchCPUBackend)
        assert b.retain_memory == memory_retained()
        assert ("malloc" in b.settings()) == (not b.retain_memory)
    finally:
        torch.set_num_threads(n)
