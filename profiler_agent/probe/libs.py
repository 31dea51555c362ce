"""CUDA, cuDNN and TensorRT versions installed on the system, read from their headers and files.

These are what JetPack installed, whether or not the Python bindings import; read under ``root``
so a board's tree (or a fixture) can be probed from anywhere.
"""

from __future__ import annotations

import json
import re
from typing import Dict, Optional

from profiler_agent.probe.sysfs import PathLike, glob, read_text

CUDA_DIRS = ("/usr/local/cuda",)
INCLUDE_DIRS = ("/usr/include", "/usr/include/aarch64-linux-gnu", "/usr/include/x86_64-linux-gnu")


def _defines(text: str, *names: str) -> Optional[str]:
    parts = []
    for n in names:
        m = re.search(rf"#define\s+{n}\s+(\d+)", text)
        if not m:
            return None
        parts.append(m.group(1))
    return ".".join(parts)


def cuda_toolkit(root: PathLike) -> Optional[str]:
    for d in CUDA_DIRS:
        text = read_text(root, f"{d}/version.json")
        if text:
            try:
                return str(json.loads(text)["cuda"]["version"])
            except (ValueError, KeyError, TypeError):
                pass
        text = read_text(root, f"{d}/version.txt")
        if text:
            m = re.search(r"(\d+\.\d+(\.\d+)?)", text)
            if m:
                return m.group(1)
    return None


def _header(root: PathLike, name: str, *defines: str) -> Optional[str]:
    for d in INCLUDE_DIRS:
        text = read_text(root, f"{d}/{name}")
        if text:
            v = _defines(text, *defines)
            if v:
                return v
    for p in glob(root, f"/usr/local/cuda*/include/{name}"):
        v = _defines(p.read_text(errors="replace"), *defines)
        if v:
            return v
    return None


def system_libraries(root: PathLike) -> Dict[str, Optional[str]]:
    """{'cuda': '11.4.315', 'cudnn': '8.6.0', 'tensorrt': '8.5.2.2'} or None where not found."""
    return {
        "cuda": cuda_toolkit(root),
        "cudnn": _header(root, "cudnn_version.h", "CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"),
        "tensorrt": _header(
            root, "NvInferVersion.h", "NV_TENSORRT_MAJOR", "NV_TENSORRT_MINOR", "NV_TENSORRT_PATCH", "NV_TENSORRT_BUILD"
        ),
    }
