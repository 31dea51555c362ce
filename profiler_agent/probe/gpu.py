"""NVIDIA GPU identity (torch.cuda, nvidia-smi) and library versions (torch, ONNX Runtime, TensorRT)."""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess
from typing import Any, Dict, List, Optional


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
