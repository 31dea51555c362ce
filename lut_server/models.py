"""Request and response bodies of the REST API (wire records themselves live in lutcore.records)."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Annotated

JobId = Annotated[int, Field(ge=1, le=2**62)]
Metric = Literal["median_ms", "mean_ms", "p10_ms", "p90_ms"]
KEY_EXAMPLE = "ir:k3_d2_e6_g1:c48x32x64->c96:s1:relu"


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "xavier-01", "device_class": "xavier",
         "fingerprint": {"jetpack": "5.1.2", "cuda": "11.4", "tensorrt": "8.5.2", "torch": "2.1.0"}}]})
    name: str = Field(max_length=64)
    device_class: str = Field(max_length=64)
    fingerprint: Dict[str, Any] = Field(default_factory=dict)


class DeviceOut(BaseModel):
    name: str
    device_class: str
    fingerprint_digest: str
    changed: bool
    previous_digest: Optional[str]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"role": "agent", "device": "xavier-01", "note": "bench board 1"}]})
    role: Literal["agent", "read", "admin"] = "agent"
    device: Optional[str] = Field(None, max_length=64)
    note: str = Field("", max_length=500)


class TokenOut(BaseModel):
    id: int
    token: str
    role: str
    device: Optional[str]
    note: str
    prefix: str


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "xavier/tensorrt/fp16", "keys": [KEY_EXAMPLE], "metric": "median_ms"}]})
    target: str = Field(max_length=512)
    keys: List[Annotated[str, Field(max_length=2048)]] = Field(max_length=100_000)
    metric: Metric = "median_ms"


class LutValue(BaseModel):
    value_ms: float
    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    n_runs: int
    n_devices: int
    spread_pct: float


class LookupOut(BaseModel):
    target: str
    lut_version: int
    values: Dict[str, LutValue]
    missing: List[str]


SpaceRef = Union[Annotated[str, Field(max_length=256)], Dict[str, Any]]


class SpaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"space": "squeezenas-small", "resolution": "64x128", "target": "xavier/tensorrt/fp16", "priority": 0}]})
    space: SpaceRef = Field(description="a built-in space name, a registered custom name, or a full definition")
    resolution: Optional[str] = Field(None, max_length=32, examples=["256x512"])
    target: str = Field(max_length=512)
    priority: int = Field(0, ge=-1000, le=1000)


class SpaceOut(BaseModel):
    space: str
    resolution: str
    target: str
    unique_ops: int
    enqueued: int
    already_measured: int


class CostMatrixIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"space": "squeezenas-xlarge", "resolution": "64x128", "target": "xavier/tensorrt/fp16",
         "metric": "median_ms"}]})
    space: SpaceRef
    resolution: Optional[str] = Field(None, max_length=32)
    target: str = Field(max_length=512)
    metric: Metric = "median_ms"


class FixedCost(BaseModel):
    name: str
    key: str
    value_ms: Optional[float]


class Coverage(BaseModel):
    measured: int
    total: int
    fraction: float


class CostMatrixOut(BaseModel):
    space: str
    resolution: str
    target: str
    lut_version: int
    candidates: List[str]
    layers: int
    matrix: List[List[Optional[float]]] = Field(description="ms per (layer, candidate); null = invalid or missing")
    mask: List[List[bool]] = Field(description="true = the candidate cannot sit at that layer")
    keys: List[List[Optional[str]]]
    fixed: List[FixedCost]
    fixed_ms: Optional[float] = Field(description="stem + head + decoder; null while any of them is missing")
    coverage: Coverage
    missing: List[str]
    calibration: Optional[Dict[str, Any]] = Field(
        None, description="stored calibration {a, b, c, n_fit, fit_error} (POST /calibrations/fit); null = none")


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "xavier/tensorrt/fp16", "n": 8, "lease_s": 300}]})
    target: str = Field(max_length=512)
    n: int = Field(8, ge=1, le=1000)
    lease_s: float = Field(300, gt=0, le=86400)


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"job_ids": [1, 2], "lease_s": 300}]})
    job_ids: List[JobId] = Field(max_length=10_000)
    lease_s: float = Field(300, gt=0, le=86400)


class HeartbeatOut(BaseModel):
    extended: List[int]
    lost: List[int]


class FailIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"error": "CUDA out of memory"}]})
    error: str = Field("", max_length=4000)


class JobState(BaseModel):
    id: int
    status: str
    attempts: int
    max_attempts: int
    last_error: Optional[str]


class Rejection(BaseModel):
    index: int
    key: Optional[str]
    reason: str


class IngestOut(BaseModel):
    accepted: int
    duplicates: int
    rejected: List[Rejection]
    lut_version: int


class ImportOut(BaseModel):
    targets: int
    entries: int
    measurements_added: int
    duplicates: int
    devices: int
    validations_added: int = 0
