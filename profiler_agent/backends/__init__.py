"""Backends: one interface (:class:`Backend`) over pytorch-cpu, pytorch-cuda, tensorrt and onnxruntime.

Each backend module is imported only when asked for, so a machine without TensorRT or CUDA
can still list the backends and learn why one is unusable.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Type

from profiler_agent.backends.base import Backend, BackendUnavailable
from profiler_agent.backends.registry import REGISTRY, BackendEntry, BackendOption


def backend_names() -> List[str]:
    return list(REGISTRY)


def backend_entry(name: str) -> BackendEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}") from None


def backend_class(name: str) -> Type[Backend]:
    entry = backend_entry(name)
    cls: Type[Backend] = getattr(importlib.import_module(entry.module), entry.cls)
    return cls


def available_backends() -> Dict[str, Optional[str]]:
    """Backend name -> None when it can run here, else the reason it cannot."""
    out: Dict[str, Optional[str]] = {}
    for name in REGISTRY:
        try:
            out[name] = backend_class(name).unavailable_reason()
        except ImportError as e:  # a backend module's own hard dependency is missing
            out[name] = f"cannot import: {e}"
    return out


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate a backend by name; raises BackendUnavailable (with the reason) if it cannot run here."""
    cls = backend_class(name)
    reason = cls.unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} cannot run here: {reason}")
    return cls(**options)


__all__ = [
    "Backend", "BackendEntry", "BackendOption", "BackendUnavailable", "available_backends", "backend_class",
    "backend_entry", "backend_names", "get_backend",
]
