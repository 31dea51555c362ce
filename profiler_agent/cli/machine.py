"""Defaults derived from the machine: the board's name and device class, options from the environment."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import socket
from pathlib import Path
from typing import Any, List, Optional


def env(name: str, default: Any = None) -> Any:
    """``$name`` unless unset or empty."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def sanitize_name(text: str) -> str:
    """Lower-case ``[a-z0-9._-]``, at most 64 characters: the shape device names must have."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return (name or "agent")[:64]


def default_device_name() -> str:
    """``$LUT_NAME``, else the host name (the board's name as registered with the server)."""
    return sanitize_name(os.environ.get("LUT_NAME") or socket.gethostname().split(".")[0])


def device_name(given: Optional[str]) -> str:
    return sanitize_name(given) if given else default_device_name()


def guess_device_class(root: str = "/", backend: Optional[str] = None) -> str:
    """A Jetson's module (``xavier``, ``orin``, ...) from its device tree; for a GPU backend on a
    discrete GPU the GPU's class from its name (``h100``, ``a100``, ``l4``, ...); else ``cpu-<arch>``."""
    tree = Path(root) / "proc/device-tree"
    texts: List[str] = []
    for name in ("model", "compatible"):  # some devkits' model is just "Jetson-AGX"; the SoC tells
        with contextlib.suppress(OSError):
            texts.append((tree / name).read_bytes().decode("utf-8", "replace").replace("\x00", " ").lower())
    text = " ".join(texts)
    for known, soc in (("orin", "tegra234"), ("xavier", "tegra194"), ("tx2", "tegra186"), ("nano", "tegra210")):
        if known in text or soc in text:
            return known
    if backend in ("pytorch-cuda", "tensorrt"):
        from profiler_agent.probe.gpu import discrete_gpu_class

        gpu = discrete_gpu_class(root)
        if gpu:
            return sanitize_name(gpu)
    arch = platform.machine().lower()
    arch = {"x86_64": "x86", "amd64": "x86", "aarch64": "arm64"}.get(arch, arch)
    return sanitize_name(f"cpu-{arch}")
