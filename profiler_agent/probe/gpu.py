"""NVIDIA GPU identity (torch.cuda, nvidia-smi) and library versions (torch, ONNX Runtime, TensorRT)."""

from __future__ import annotations

import importlib
import platform
import re
import shutil
import subprocess
from typing import Any, Dict, List, Optional

from profiler_agent.probe.sysfs import PathLike, glob


def _module_version(name: str) -> Optional[str]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover
        metadata = None  # type: ignore[assignment]
    if metadata is not None:
        for dist in (name, name.replace("_", "-")):
            try:
                return metadata.version(dist)
            except Exception:  # noqa: BLE001 - any lookup failure means "not a distribution"
                pass
    try:
        return str(importlib.import_module(name).__version__)
    except Exception:  # noqa: BLE001
        return None


def software_versions() -> Dict[str, Optional[str]]:
    """Versions that change numbers, recorded everywhere (None when not installed)."""
    out: Dict[str, Optional[str]] = {"python": platform.python_version()}
    try:
        import torch

        out["torch"] = str(torch.__version__)
        out["torch_cuda"] = str(torch.version.cuda) if torch.version.cuda else None
        out["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    except ImportError:
        out["torch"] = None
    out["onnxruntime"] = _module_version("onnxruntime")
    out["onnx"] = _module_version("onnx")
    # TensorRT wheels are named tensorrt (JetPack) or tensorrt-cu12 / -cu13 (PyPI).
    trt = None
    for name in ("tensorrt", "tensorrt_cu12", "tensorrt_cu13"):
        trt = trt or _module_version(name)
    out["tensorrt"] = trt
    return out


def nvidia_smi(fields: List[str], timeout: float = 5.0) -> Optional[List[Dict[str, str]]]:
    """Rows of ``nvidia-smi --query-gpu=...`` (None without nvidia-smi or on failure)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in proc.stdout.strip().splitlines():
        vals = [v.strip() for v in line.split(",")]
        rows.append(dict(zip(fields, vals)))
    return rows


def cuda_gpus() -> List[Dict[str, Any]]:
    """GPUs torch can see: name, compute capability, SM count, memory; plus driver from nvidia-smi."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    smi = nvidia_smi(["name", "driver_version", "pci.bus_id"]) or []
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        g: Dict[str, Any] = {
            "index": i,
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "sm_count": p.multi_processor_count,
            "memory_mib": int(p.total_memory // (1 << 20)),
            "integrated": bool(getattr(p, "is_integrated", False)),
        }
        if i < len(smi):
            g["driver"] = smi[i].get("driver_version")
        out.append(g)
    return out


def nvidia_smi_clocks() -> Optional[List[Dict[str, Any]]]:
    """SM/memory clocks (MHz), temperature, power of each discrete GPU; None without nvidia-smi."""
    fields = ["clocks.sm", "clocks.mem", "clocks.max.sm", "temperature.gpu", "power.draw", "pstate"]
    rows = nvidia_smi(fields, timeout=3.0)
    if rows is None:
        return None
    out = []
    for r in rows:
        d: Dict[str, Any] = {}
        for k, v in r.items():
            try:
                d[k] = float(v)
            except ValueError:
                d[k] = v
        out.append(d)
    return out


# Discrete GPU families, most specific first: the name's tokens decide ("l40s" before "l40", "l4").
GPU_CLASSES = (
    "gh200", "gb200", "b200", "b100", "h200", "h100", "h800", "h20", "a100", "a800", "a40", "a30", "a10g", "a10",
    "a16", "a2", "l40s", "l40", "l20", "l4", "t4", "v100", "p100", "p40", "p4",
)


def device_class_from_gpu_name(name: str) -> Optional[str]:
    """'NVIDIA H100 80GB HBM3' -> 'h100'; GeForce/RTX cards -> e.g. 'rtx-4090'; None when unknown."""
    text = name.lower().replace("nvidia", " ").replace("tesla", " ")
    tokens = re.findall(r"[a-z]+\d+[a-z]*|\d+[a-z]*|[a-z]+", text)
    for cls in GPU_CLASSES:
        if cls in tokens:
            return cls
    m = re.search(r"\b(rtx|gtx)\s*(a?\d{3,4})(\s*ti)?\b", text)
    if m:
        return f"{m.group(1)}-{m.group(2)}{'ti' if m.group(3) else ''}"
    m = re.search(r"\brtx\s+(a\d{3,4}|\d{4}\s*ada)", text)
    if m:
        return "rtx-" + re.sub(r"\s+", "-", m.group(1))
    return None


def proc_gpu_names(root: PathLike = "/") -> List[str]:
    """GPU models the NVIDIA driver lists under /proc/driver/nvidia/gpus (readable without CUDA)."""
    names = []
    for info in glob(root, "/proc/driver/nvidia/gpus/*/information"):
        text = info.read_text(errors="replace")
        m = re.search(r"^Model:\s*(.+)$", text, re.M)
        if m:
            names.append(m.group(1).strip())
    return names


def discrete_gpu_class(root: PathLike = "/") -> Optional[str]:
    """The first discrete GPU's class: from the driver's /proc listing, else nvidia-smi on the live system."""
    names = proc_gpu_names(root)
    if not names and str(root) == "/":
        names = [r.get("name", "") for r in (nvidia_smi(["name"]) or [])]
    for n in names:
        cls = device_class_from_gpu_name(n)
        if cls:
            return cls
    return None
