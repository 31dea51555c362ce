"""TensorRT build settings as plain data, engine-cache keys and the cache's path layout.

Nothing here imports tensorrt, so it is tested on any machine; ``tensorrt.py`` turns these
settings into builder calls on the board.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

TRT_PRECISIONS = ("fp32", "fp16", "int8")
INT8_MODES = ("calibrate", "ranges")
KEY_VERSION = 1  # bump when the engine-building recipe changes, so old engines are not reused


def default_cache_dir() -> Path:
    """``$PROFILER_AGENT_CACHE`` or ``~/.cache/profiler-agent``; TensorRT files go under ``tensorrt/``."""
    env = os.environ.get("PROFILER_AGENT_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "profiler-agent"
    return base / "tensorrt"


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """Everything about an engine build that can change its speed.

    ``int8_mode``: ``calibrate`` runs an entropy calibrator over ``calib_batches`` random inputs;
    ``ranges`` sets every tensor's dynamic range to +-``int8_range`` (no calibration data needed,
    the speed is the same, the accuracy is not the point here). fp16 is allowed as a fallback in
    int8 builds, as trtexec ``--int8 --fp16`` does. TF32 stays off for fp32 unless ``tf32``.
    """

    precision: str = "fp32"
    workspace_mb: int = 1024
    opt_level: Optional[int] = None  # builder_optimization_level (TensorRT >= 8.6); None = default (3)
    int8_mode: str = "calibrate"
    int8_range: float = 4.0
    calib_batches: int = 8
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.precision not in TRT_PRECISIONS:
            raise ValueError(f"precision {self.precision!r} must be one of {', '.join(TRT_PRECISIONS)}")
        if self.int8_mode not in INT8_MODES:
            raise ValueError(f"int8_mode {self.int8_mode!r} must be one of {', '.join(INT8_MODES)}")
        if self.workspace_mb < 1:
            raise ValueError(f"workspace_mb={self.workspace_mb} must be positive")
        if self.opt_level is not None and not 0 <= self.opt_level <= 5:
            raise ValueError(f"opt_level={self.opt_level} must be 0..5")
        if self.int8_range <= 0 or self.calib_batches < 1:
            raise ValueError("int8_range must be positive and calib_batches at least 1")

    def builder_flags(self) -> List[str]:
        """Names of ``trt.BuilderFlag`` members to set."""
        flags: List[str] = []
        if self.precision in ("fp16", "int8"):
            flags.append("FP16")
        if self.precision == "int8":
            flags.append("INT8")
        return flags

    def cleared_flags(self) -> List[str]:
        """Names of ``trt.BuilderFlag`` members to clear (TF32 is on by default in TensorRT)."""
        return [] if self.tf32 else ["TF32"]

    def key_fields(self) -> Dict[str, Any]:
        """The fields that enter the engine-cache key (int8 knobs only for int8 builds)."""
        d: Dict[str, Any] = {
            "precision": self.precision,
            "workspace_mb": self.workspace_mb,
            "opt_level": self.opt_level,
            "tf32": self.tf32,
        }
        if self.precision == "int8":
            d.update(int8_mode=self.int8_mode)
            if self.int8_mode == "ranges":
                d.update(int8_range=self.int8_range)
            else:
                d.update(calib_batches=self.calib_batches)
        return d

    def target_settings(self) -> Dict[str, str]:
        """The non-default settings as they go into the target id."""
        s: Dict[str, str] = {}
        if self.opt_level is not None:
            s["opt_level"] = str(self.opt_level)
        if self.tf32:
            s["tf32"] = "1"
        return s


def slug(text: str) -> str:
    """A path- and id-safe lower-case name: 'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    s = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")
    return s or "unknown"


def gpu_id(name: str, capability: Optional[Any] = None) -> str:
    """GPU identity for keys and paths: the name's slug plus ``-smXY`` when the capability is known."""
    gid = slug(name)
    if capability is not None:
        major, minor = capability
        gid += f"-sm{major}{minor}"
    return gid


def engine_key(op_key: str, trt_version: str, gpu: str, settings: BuildSettings) -> str:
    """Hex digest identifying one engine: op key + TensorRT version + GPU + precision and build settings."""
    material = {
        "v": KEY_VERSION,
        "op": op_key,
        "tensorrt": trt_version,
        "gpu": gpu,
        "build": settings.key_fields(),
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class CacheLayout:
    """Where engines and the timing cache live::

        <root>/trt-<version>/<gpu>/timing.cache            one per TensorRT version and GPU
        <root>/trt-<version>/<gpu>/<precision>/<key>.engine
        <root>/trt-<version>/<gpu>/<precision>/<key>.json  the key's material, for humans
    """

    root: Path
    trt_version: str
    gpu: str

    @classmethod
    def at(cls, root: Union[str, Path, None], trt_version: str, gpu: str) -> CacheLayout:
        return cls(Path(root) if root is not None else default_cache_dir(), trt_version, gpu)

    @property
    def base(self) -> Path:
        return self.root / f"trt-{slug(self.trt_version)}" / self.gpu

    @property
    def timing_cache(self) -> Path:
        return self.base / "timing.cache"

    def engine(self, key: str, precision: str) -> Path:
        return self.base / precision / f"{key}.engine"

    def engine_info(self, key: str, precision: str) -> Path:
        return self.base / precision / f"{key}.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves half an engine or cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
