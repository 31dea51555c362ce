"""Wire records exchanged over REST between the agent, the server and the client.

Defined once here (pydantic, Python 3.8-compatible annotations) so the server's OpenAPI
schema, the agent's payloads and the client's parsing cannot drift apart.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lutcore.errors import LutError
from lutcore.ops import spec_from_dict

BACKENDS = ("pytorch-cpu", "pytorch-cuda", "tensorrt", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "int8")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Target(BaseModel):
    """Where and how ops are timed; settings are those that change the numbers (threads, power mode)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str = Field(description="device class, e.g. xavier, orin, h100, cpu-x86", examples=["xavier"])
    backend: str = Field(description=f"one of {', '.join(BACKENDS)}", examples=["tensorrt"])
    precision: str = Field("fp32", description=f"one of {', '.join(PRECISIONS)}", examples=["fp16"])
    batch: int = Field(1, ge=1, description="batch size the ops are timed at")
    settings: Dict[str, str] = Field(default_factory=dict, examples=[{"power_mode": "MAXN"}])

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"device {v!r} must be lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"backend {v!r} must be one of {', '.join(BACKENDS)}")
        return v

    @field_validator("precision")
    @classmethod
    def _precision(cls, v: str) -> str:
        if v not in PRECISIONS:
            raise ValueError(f"precision {v!r} must be one of {', '.join(PRECISIONS)}")
        return v

    @field_validator("settings")
    @classmethod
    def _settings(cls, v: Dict[str, str]) -> Dict[str, str]:
        for k, s in v.items():
            if not _NAME.match(k) or any(c in str(s) for c in ",=@/ "):
                raise ValueError(f"setting {k}={s!r}: names are lower-case, values have no ',=@/ '")
        return {k: str(v[k]) for k in sorted(v)}

    @property
    def id(self) -> str:
        """Readable id: ``xavier/tensorrt/fp16``, ``cpu-x86/pytorch-cpu/fp32/b8@threads=2``."""
        tid = f"{self.device}/{self.backend}/{self.precision}"
        if self.batch != 1:
            tid += f"/b{self.batch}"
        if self.settings:
            tid += "@" + ",".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return tid

    @classmethod
    def parse(cls, target_id: str) -> Target:
        """Inverse of ``id``; raises ValueError naming the part that is wrong."""
        base, _, settings = target_id.partition("@")
        parts = base.split("/")
        if len(parts) not in (3, 4):
            raise ValueError(f"target id {target_id!r} must look like device/backend/precision[/bN][@k=v,...]")
        batch = 1
        if len(parts) == 4:
            if not re.match(r"^b[1-9][0-9]*$", parts[3]):
                raise ValueError(f"target id {target_id!r}: batch part {parts[3]!r} must be bN")
            batch = int(parts[3][1:])
        kv: Dict[str, str] = {}
        for item in filter(None, settings.split(",")):
            k, eq, v = item.partition("=")
            if not eq:
                raise ValueError(f"target id {target_id!r}: setting {item!r} must be k=v")
            kv[k] = v
        return cls(device=parts[0], backend=parts[1], precision=parts[2], batch=batch, settings=kv)


class TimingStats(BaseModel):
    """Summary of one op's samples, in milliseconds per forward pass."""

    model_config = ConfigDict(extra="forbid")

    median_ms: float
    mean_ms: float
    std_ms: float = Field(ge=0)
    min_ms: float
    p10_ms: float
    p90_ms: float
    n: int = Field(ge=1, description="number of samples (each the mean of iters_per_sample runs)")
    iters_per_sample: int = Field(1, ge=1)
    ci_low_ms: Optional[float] = Field(None, description="95% CI of the median, lower bound")
    ci_high_ms: Optional[float] = Field(None, description="95% CI of the median, upper bound")
    outliers: int = Field(0, ge=0, description="samples flagged as outliers (kept, not dropped)")

    @model_validator(mode="after")
    def _check(self) -> TimingStats:
        for name in ("median_ms", "mean_ms", "min_ms", "p10_ms", "p90_ms"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name}={v!r} must be a finite positive time")
        if not math.isfinite(self.std_ms):
            raise ValueError(f"std_ms={self.std_ms!r} must be finite")
        if not (self.min_ms <= self.p10_ms <= self.median_ms <= self.p90_ms):
            raise ValueError(
                f"percentiles out of order: min {self.min_ms} <= p10 {self.p10_ms} <= "
                f"median {self.median_ms} <= p90 {self.p90_ms} must hold"
            )
        if self.ci_low_ms is not None and self.ci_high_ms is not None:
            if not (math.isfinite(self.ci_low_ms) and math.isfinite(self.ci_high_ms)):
                raise ValueError("ci bounds must be finite")
            if not self.ci_low_ms <= self.median_ms <= self.ci_high_ms:
                raise ValueError(f"ci [{self.ci_low_ms}, {self.ci_high_ms}] must contain the median {self.median_ms}")
        return self


class OpRecord(BaseModel):
    """An op as sent over the wire: its spec and the key the sender computed from it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(examples=["ir:k3_d2_e6_g1:c48x128x256->c96:s1:relu"])
    spec: Dict[str, Any] = Field(description="the op spec as lutcore's OpSpec.to_dict() writes it")

    @model_validator(mode="after")
    def _key_matches(self) -> OpRecord:
        try:
            spec = spec_from_dict(self.spec)
        except LutError as e:
            raise ValueError(f"invalid spec: {e}") from None
        if spec.key != self.key:
            raise ValueError(f"key {self.key!r} does not match its spec, whose key is {spec.key!r}")
        return self


class Measurement(BaseModel):
    """One op timed on one target by one agent run."""

    model_config = ConfigDict(extra="forbid")

    op: OpRecord
    stats: TimingStats
    job_id: Optional[int] = Field(None, description="the job this completes, if it came from the queue")
    measured_at: Optional[str] = Field(None, description="ISO 8601 time the op was timed")
    env: Dict[str, Any] = Field(default_factory=dict, description="clocks/temperatures around the op, flags")


class MeasurementBatch(BaseModel):
    """Results of one agent run (``run_id``) posted together; re-posting a run changes nothing."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=8, max_length=64, description="unique per agent run, e.g. a UUID")
    target: Target
    device_name: str = Field(description="the registered device (board) that timed these", examples=["xavier-01"])
    fingerprint: Dict[str, Any] = Field(default_factory=dict)
    items: List[Dict[str, Any]] = Field(
        description="Measurement objects; each is validated on its own so one bad item rejects only itself"
    )


class Job(BaseModel):
    """Work handed to an agent under a lease: an op the LUT lacks (``kind="op"``), or validation
    of whole networks (``kind="validate"``, no op; the payload says which)."""

    id: int
    target: str
    op: Optional[OpRecord] = None
    kind: str = "op"
    lease_expires_at: Optional[str] = None
    attempts: int = 0
    payload: Dict[str, Any] = Field(default_factory=dict)
