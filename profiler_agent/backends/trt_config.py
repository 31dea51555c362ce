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
from typing import Any, Dict, Optional, Tuple, Union

TRT_PRECISIONS = ("fp32", "fp16", "int8")
KEY_VERSION = 2  # bump when the engine-building recipe changes, so old engines are not reused (2: typed ONNX, Q/DQ)


def default_cache_dir() -> Path:
    """``$PROFILER_AGENT_CACHE`` or ``~/.cache/profiler-agent``; TensorRT files go under ``tensorrt/``."""
    env = os.environ.get("PROFILER_AGENT_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "profiler-agent"
    return base / "tensorrt"


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """Everything about an engine build that can change its speed.

    The precision is written into the ONNX (``typed_onnx``): fp16 as a typed export, int8 as
    explicit Q/DQ with activations fixed at +-``int8_range`` (no calibration data; the speed is
    the same, the accuracy is not the point here). TF32 stays off for fp32 unless ``tf32``.
    """

    precision: str = "fp32"
    workspace_mb: int = 1024
    opt_level: Optional[int] = None  # builder_optimization_level (TensorRT >= 8.6); None = default (3)
    int8_range: float = 4.0
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.precision not in TRT_PRECISIONS:
            raise ValueError(f"precision {self.precision!r} must be one of {', '.join(TRT_PRECISIONS)}")
        if self.workspace_mb < 1:
            raise ValueError(f"workspace_mb={self.workspace_mb} must be positive")
        if self.opt_level is not None and not 0 <= self.opt_level <= 5:
            raise ValueError(f"opt_level={self.opt_level} must be 0..5")
        if self.int8_range <= 0:
            raise ValueError("int8_range must be positive")

    def key_fields(self) -> Dict[str, Any]:
        """The fields that enter the engine-cache key (the int8 range only for int8 builds)."""
        d: Dict[str, Any] = {
            "precision": self.precision,
            "workspace_mb": self.workspace_mb,
            "opt_level": self.opt_level,
            "tf32": self.tf32,
        }
        if self.precision == "int8":
            d.update(int8_range=self.int8_range)
        return d

    def target_settings(self) -> Dict[str, str]:
        """The non-default settings as they go into the target id."""
        s: Dict[str, str] = {}
        if self.opt_level is not None:
            s["opt_level"] = str(self.opt_level)
        if self.tf32:
            s["tf32"] = "1"
        return s


@dataclasses.dataclass(frozen=True)
class DeviceKey:
    """What about the device an engine or a timing cache was tuned for, beyond the GPU's name.

    A Jetson in another power mode has fewer SMs' worth of clock, a MIG slice fewer SMs, a
    different CUDA or cuDNN other tactics: engines and timing caches from one are not reused
    for another.
    """

    sm_count: Optional[int] = None
    max_sm_mhz: Optional[int] = None
    power_mode: Optional[str] = None
    versions: Tuple[Tuple[str, str], ...] = ()  # (library, version) pairs, e.g. cuda, cudnn

    def fields(self) -> Dict[str, Any]:
        return {
            "sm_count": self.sm_count,
            "max_sm_mhz": self.max_sm_mhz,
            "power_mode": self.power_mode,
            "versions": dict(self.versions),
        }

    def dirname(self) -> str:
        """A readable folder name plus a digest of all fields."""
        parts = [f"sm{self.sm_count or 'x'}", f"{self.max_sm_mhz or 'x'}mhz"]
        if self.power_mode:
            parts.append(f"pm-{slug(self.power_mode)}")
        digest = hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()[:8]
        return "-".join(parts + [digest])


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


def engine_key(
    op_key: str, trt_version: str, gpu: str, settings: BuildSettings, device: Optional[DeviceKey] = None
) -> str:
    """Hex digest identifying one engine: op key + TensorRT version + GPU and device state + build settings."""
    material = {
        "v": KEY_VERSION,
        "op": op_key,
        "tensorrt": trt_version,
        "gpu": gpu,
        "device": (device or DeviceKey()).fields(),
        "build": settings.key_fields(),
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class CacheLayout:
    """Where engines and the timing cache live::

        <root>/trt-<version>/<gpu>/<device>/timing.cache            one per TensorRT version, GPU and device key
        <root>/trt-<version>/<gpu>/<device>/<precision>/<key>.engine
        <root>/trt-<version>/<gpu>/<device>/<precision>/<key>.json  the key's material, for humans
    """

    root: Path
    trt_version: str
    gpu: str
    device: DeviceKey = DeviceKey()

    @classmethod
    def at(
        cls, root: Union[str, Path, None], trt_version: str, gpu: str, device: Optional[DeviceKey] = None
    ) -> CacheLayout:
        return cls(Path(root) if root is not None else default_cache_dir(), trt_version, gpu, device or DeviceKey())

    @property
    def base(self) -> Path:
        return self.root / f"trt-{slug(self.trt_version)}" / self.gpu / self.device.dirname()

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
