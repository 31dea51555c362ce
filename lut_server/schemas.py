"""Every request and response body of the REST API (wire records themselves live in lutcore.records).

Bounds live here, so FastAPI refuses oversize input with a 422 naming the field before any route,
service or lock runs. ``Doc`` models document loosely shaped answers (summaries, export documents)
while still being a response model.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import Annotated

from lutcore.calibration import FEATURES, MODELS

JobId = Annotated[int, Field(ge=1, le=2**62)]
Metric = Literal["median_ms", "mean_ms", "p10_ms", "p90_ms"]
Missing = Literal["report", "predict"]
MISSING_DOC = ('"report" (default): unmeasured keys are listed in `missing` and have no value; "predict": they '
               "are also predicted from the target's measured entries, each flagged with its 90% interval")
KEY_EXAMPLE = "ir:k3_d2_e6_g1:c48x32x64->c96:s1:relu"


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "xavier-01", "device_class": "xavier",
         "fingerprint": {"jetpack": "5.1.2", "cuda": "11.4", "tensorrt": "8.5.2", "torch": "2.1.0"}}]})
    name: str = Field(max_length=64)
    device_class: str = Field(max_length=64)
    fingerprint: Dict[str, Any] = Field(default_factory=dict)


class Doc(BaseModel):
    """A loosely shaped answer: the named fields are always there, others may be added."""

    model_config = ConfigDict(extra="allow")


class FingerprintSeen(BaseModel):
    digest: str
    fingerprint: Optional[Dict[str, Any]]
    first_seen: float


class DeviceView(BaseModel):
    name: str
    device_class: str
    fingerprint: Optional[Dict[str, Any]]
    fingerprint_digest: str
    history: List[FingerprintSeen]


class DeviceOut(BaseModel):
    name: str
    device_class: str
    fingerprint_digest: str
    changed: bool
    previous_digest: Optional[str]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"role": "agent", "device": "xavier-01", "device_class": "xavier", "note": "bench board 1"}]})
    role: Literal["agent", "search", "read", "admin"] = "agent"
    device: Optional[str] = Field(None, max_length=64, description="agents: the board name it writes for")
    device_class: Optional[str] = Field(None, max_length=64, description="agents: the target device class "
                                        "(first part of a target id) it writes for; '*' for any")
    note: str = Field("", max_length=500)


class TokenOut(BaseModel):
    id: int
    token: str
    role: str
    device: Optional[str]
    device_class: Optional[str] = None
    note: str
    prefix: str


class TokenView(BaseModel):
    id: int
    prefix: str
    role: str
    device: Optional[str]
    device_class: Optional[str]
    note: str
    created_at: float
    revoked: bool


class Revoked(BaseModel):
    revoked: int


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "xavier/tensorrt/fp16", "keys": [KEY_EXAMPLE], "metric": "median_ms"}]})
    target: str = Field(max_length=512)
    keys: List[Annotated[str, Field(max_length=2048)]] = Field(max_length=100_000)
    metric: Metric = "median_ms"
    missing: Missing = Field("report", description=MISSING_DOC)


class LutValue(BaseModel):
    value_ms: float
    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    n_runs: int
    n_devices: int
    spread_pct: float


class PredictedValue(BaseModel):
    value_ms: float
    lo_ms: float
    hi_ms: float


class PredictionInfo(BaseModel):
    predicted: int = Field(description="how many keys (lookup) or unique ops (cost matrix) were predicted")
    n_train: int = Field(description="measured entries the target's predictor was fitted on (0: none needed)")
    coverage: Optional[float] = Field(description="intended share of unmeasured ops inside their interval")
    learner: Optional[str]
    network_rule: str = Field(description="how a network's interval adds its ops' (lutcore.netsum)")


class LookupOut(BaseModel):
    target: str
    lut_version: int
    values: Dict[str, LutValue] = Field(description="measured keys only, in every mode")
    missing: List[str] = Field(description="every unmeasured key, predicted or not")
    predicted: Optional[Dict[str, PredictedValue]] = Field(
        None, description='missing="predict": the missing keys the predictor could read, value and interval')
    prediction: Optional[PredictionInfo] = None


SpaceRef = Union[Annotated[str, Field(max_length=256)], Dict[str, Any]]


class SpaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"space": "squeezenas-small", "resolution": "64x128", "target": "xavier/tensorrt/fp16", "priority": 0}]})
    space: SpaceRef = Field(description="a built-in space name, a registered custom name, or a full definition")
    resolution: Optional[str] = Field(None, max_length=32, examples=["256x512"])
    target: str = Field(max_length=512)
    priority: int = Field(0, ge=-1000, le=1000)
    budget: Optional[int] = Field(None, ge=1, le=1_000_000, description=(
        "measure at most this many ops, planned by the predictor (issue 20) instead of every missing op"))
    budget_share: Optional[float] = Field(None, gt=0, le=1, description="the budget as a share of the unique ops")
    interval_bound: Optional[float] = Field(None, gt=0, le=100, description=(
        "with a budget: stop once every unmeasured cell's 90% interval is at most this share of its value "
        "(default 0.3)"))


class PlanView(BaseModel):
    space: str
    resolution: str
    target: str
    state: Literal["measuring", "met", "spent", "complete", "dropped"]
    budget: int
    spent: int
    batches: int
    bound: float
    worst_interval: Optional[float]


class SpaceOut(BaseModel):
    space: str
    resolution: str
    target: str
    unique_ops: int
    enqueued: int
    already_measured: int
    plan: Optional[PlanView] = None


class CostsIn(BaseModel):
    """What the cost of a space on a target is asked with (/cost-matrix, /cell-costs)."""

    model_config = ConfigDict(extra="forbid")
    space: SpaceRef
    resolution: Optional[str] = Field(None, max_length=32)
    target: str = Field(max_length=512)
    metric: Metric = "median_ms"


class CostMatrixIn(CostsIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"space": "squeezenas-xlarge", "resolution": "64x128", "target": "xavier/tensorrt/fp16",
         "metric": "median_ms"}]})
    missing: Missing = Field("report", description=MISSING_DOC)


class FixedCost(BaseModel):
    name: str
    key: str
    value_ms: Optional[float]
    predicted: Optional[bool] = None
    lo_ms: Optional[float] = None
    hi_ms: Optional[float] = None


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
    predicted: Optional[List[List[bool]]] = Field(
        None, description='missing="predict" only: true = the cell\'s value is predicted, not measured')
    lo: Optional[List[List[Optional[float]]]] = Field(
        None, description='missing="predict" only: low end of each cell\'s interval (a measured cell: its value)')
    hi: Optional[List[List[Optional[float]]]] = Field(None, description='missing="predict" only: high end')
    fixed_lo_ms: Optional[float] = None
    fixed_hi_ms: Optional[float] = None
    prediction: Optional[PredictionInfo] = None


class CellCostsIn(CostsIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"space": "darts-cifar10", "resolution": "32x32", "target": "cpu-x86/pytorch-cpu/fp32@threads=1",
         "metric": "median_ms"}]})
    missing: Missing = Field("report", description=MISSING_DOC)


class CellBound(BaseModel):
    """A cell space's costs at one end of the predicted keys' intervals (measured keys: their value)."""

    C: List[List[List[Optional[float]]]]
    pre: List[Optional[float]]
    depth: List[List[Optional[float]]]
    add: Optional[List[Optional[float]]] = None


class CellCostsOut(BaseModel):
    space: str
    resolution: str
    target: str
    metric: str
    lut_version: int
    layout: Dict[str, Any] = Field(description="which key sits at which (cell, edge, op): lutcore CellLayout.to_dict()")
    C: List[List[List[Optional[float]]]] = Field(
        description="ms per (cell, edge, op); 0 for the zero op and identity skips, null = unmeasured")
    pre: List[Optional[float]] = Field(description="ms of each cell's input preprocessing; null while unmeasured")
    depth: List[List[Optional[float]]] = Field(
        description="per hyper-cell, ms of the ops that exist only at depth d (index d - 1)")
    fixed: List[FixedCost]
    fixed_ms: Optional[float] = Field(description="stem, head, aggregation, decoder; null while any is missing")
    coverage: Coverage
    missing: List[str] = Field(description="every unmeasured key, predicted or not")
    add: Optional[List[Optional[float]]] = Field(
        None, description="ms of one node-sum add per cell: a node whose edges are all zero runs none, and gives "
        "its cell this back (lutcore CellLayout: the per-edge count charges it -1 add)")
    calibration: Optional[Dict[str, Any]] = None
    predicted: Optional[Dict[str, PredictedValue]] = Field(
        None, description='missing="predict" only: the keys whose value is predicted, with their interval')
    predicted_cells: Optional[List[List[List[bool]]]] = Field(
        None, description='missing="predict" only: true = C\'s (cell, edge, op) value is predicted')
    lo: Optional[CellBound] = Field(None, description='missing="predict" only: the costs at the intervals\' low ends')
    hi: Optional[CellBound] = Field(None, description='missing="predict" only: at their high ends')
    fixed_lo_ms: Optional[float] = None
    fixed_hi_ms: Optional[float] = None
    prediction: Optional[PredictionInfo] = None


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "xavier/tensorrt/fp16", "n": 8, "lease_s": 300}]})
    target: str = Field(max_length=512)
    n: int = Field(8, ge=1, le=1000)
    lease_s: float = Field(300, gt=0, le=86400)


class JobOut(BaseModel):
    id: int
    target: str
    op: Optional[Dict[str, Any]]
    kind: str
    lease_expires_at: Optional[str]
    attempts: int
    payload: Dict[str, Any]


class ClaimOut(BaseModel):
    jobs: List[JobOut]


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
    refit_jobs: List[int] = Field(default_factory=list, description="validate jobs queued because this batch made "
                                  "a calibration stale (docs/server.md, 'Calibrations that follow the LUT')")


class ImportOut(BaseModel):
    targets: int
    entries: int
    measurements_added: int
    duplicates: int
    devices: int
    validations_added: int = 0


class TargetView(BaseModel):
    id: str
    target: Dict[str, Any]
    lut_version: int
    ops_measured: int


class ParkedJob(BaseModel):
    id: int
    target: str
    key: Optional[str]
    attempts: int
    error: Optional[str]
    parked_at: Optional[str]


class StatusOut(BaseModel):
    targets: List[TargetView]
    spaces: List[Dict[str, Any]]
    queue: Dict[str, int]
    queue_by_target: Dict[str, Dict[str, int]]
    parked: List[ParkedJob]
    validations: List[Dict[str, Any]]
    plans: List[PlanView] = []


class OpApart(BaseModel):
    key: str
    old_ms: float
    new_ms: float
    ratio: float


class CompareOut(BaseModel):
    """``lut_server.compare``: fractions, not percents; None where no key is in both."""

    old: str
    new: str
    space: Optional[str]
    resolution: Optional[str]
    space_ops: Optional[int] = None
    common: int
    not_positive: int
    median_ratio: Optional[float]
    median_abs_diff: Optional[float]
    within_10pct: Optional[float]
    worst: List[OpApart]
    only_old: int
    only_old_examples: List[str]
    only_new: int
    only_new_examples: List[str]


class Health(BaseModel):
    status: str
    db: str
    version: str


# -- LUT truth: validations and calibrations ------------------------------------------------------
MAX_MS = 1e7
PositiveMs = Annotated[float, Field(gt=0, le=MAX_MS, allow_inf_nan=False)]
OpKey = Annotated[str, Field(min_length=1, max_length=2048)]

VALIDATION_EXAMPLE: Dict[str, Any] = {
    "run_id": "val-2026-11-23-a", "target": "cpu-x86/pytorch-cpu/fp32@threads=1", "device_name": "cpu-01",
    "space": "squeezenas-small", "resolution": "256x512", "lut_version": 7,
    "results": [{"arch": "squeezenas-small:random:3", "kind": "random", "predicted_ms": 41.2,
                 "measured_ms": 40.1, "n_ops": 31, "rounds": [40.3, 40.1, 39.9]}],
}


class ValidationResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: str = Field(min_length=1, max_length=256)
    kind: Literal["published", "random", "named"]
    predicted_ms: PositiveMs
    measured_ms: PositiveMs
    n_ops: int = Field(0, ge=0, le=1_000_000)
    rounds: List[PositiveMs] = Field(default_factory=list, max_length=10_000)
    in_context: Optional[Dict[OpKey, PositiveMs]] = Field(
        None, max_length=4096, description="per op key, its ms inside this network, as the backend attributed them "
        "(TensorRT's per-layer profile); absent where the backend cannot")
    env: Optional[Dict[str, Any]] = Field(None, description="the backend's provenance of the network timing: clocks "
                                          "read right after it, throttle reasons, CUDA graphs (16 KiB at most)")


class ValidationBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [VALIDATION_EXAMPLE]})
    run_id: str = Field(min_length=8, max_length=64)
    target: str = Field(max_length=512)
    device_name: str = Field(min_length=1, max_length=64)
    space: str = Field(min_length=1, max_length=256)
    resolution: str = Field(max_length=32)
    lut_version: Optional[int] = Field(None, ge=0, le=2**31 - 1)
    results: List[ValidationResult] = Field(min_length=1, max_length=10_000)
    job_id: Optional[int] = Field(None, ge=1, le=2**62, description="the validate job these results complete")

    @field_validator("results")
    @classmethod
    def _unique_archs(cls, v: List[ValidationResult]) -> List[ValidationResult]:
        seen = set()
        for r in v:
            if r.arch in seen:
                raise ValueError(f"architecture {r.arch!r} appears twice in one run")
            seen.add(r.arch)
        return v


class ValidationsPosted(BaseModel):
    accepted: int
    duplicates: int
    job_done: Optional[int] = None


class ValidateJobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "cpu-x86/pytorch-cpu/fp32@threads=1", "space": "squeezenas-small", "resolution": "256x512",
         "archs": "published,random:20", "seed": 0, "rounds": 5, "calibrate": True}]})
    target: str = Field(max_length=512)
    space: str = Field(min_length=1, max_length=256)
    resolution: str = Field(max_length=32)
    archs: str = Field("published,random:20", min_length=1, max_length=4000,
                       description="published, random:N and architecture names, comma separated")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the first random architecture")
    rounds: int = Field(5, ge=1, le=100)
    max_time_per_net: float = Field(0.5, gt=0, le=60, allow_inf_nan=False, description="seconds per network per round")
    calibrate: bool = Field(True, description="fit the calibration once the validations are in")
    fit_share: float = Field(0.5, gt=0, le=1, allow_inf_nan=False,
                             description="with calibrate: share of the random architectures the fit rests on")
    priority: int = Field(-1, ge=-1000, le=1000, description="op jobs have 0 or more, so they go first")


class ValidateJobOut(Doc):
    id: int
    status: str
    created: bool
    architectures: int


class ValidationReport(Doc):
    target: str
    space: str
    resolution: str
    results: List[Dict[str, Any]]
    summary: Dict[str, Any]
    calibration: Optional[Dict[str, Any]]
    calibrated_summary: Optional[Dict[str, Any]]
    in_context_summary: Optional[Dict[str, Any]] = None
    isolated_summary_same_networks: Optional[Dict[str, Any]] = None


class FitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "cpu-x86/pytorch-cpu/fp32@threads=1", "space": "squeezenas-small", "resolution": "256x512",
         "model": "auto", "fit_share": 0.5, "seed": 0}]})
    target: str = Field(max_length=512)
    space: str = Field(min_length=1, max_length=256)
    resolution: str = Field(max_length=32)
    model: str = Field("auto", max_length=64, description="auto (the candidate with the least leave-one-out error "
                       "on the fitting set) or one of " + ", ".join(MODELS))
    features: Optional[List[Annotated[str, Field(max_length=64)]]] = Field(
        None, min_length=1, max_length=len(FEATURES), description="fit exactly these (overrides model)")
    fit_share: float = Field(0.5, gt=0, le=1, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**63 - 1)


class FitOut(Doc):
    calibration: Dict[str, Any]
    fit_summary: Dict[str, Any]
    heldout_summary: Dict[str, Any]
    raw_summary: Dict[str, Any]
    n_fit: int
    n_heldout: int


class CalibrationRecord(Doc):
    target: str
    space: str
    resolution: str
    calibration: Dict[str, Any]


# -- operations (admin) ---------------------------------------------------------------------------
class RequeueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"target": "xavier/tensorrt/fp16"}]})
    target: Optional[str] = Field(None, max_length=512, description="only this target's parked jobs")
    job_ids: Optional[List[JobId]] = Field(None, max_length=10_000, description="only these jobs")


class Requeued(BaseModel):
    requeued: List[int]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "xavier/tensorrt/fp16", "run_id": "0b8f7c3e-run-2024-05-01", "reason": "board overheated"}]})
    target: str = Field(max_length=512)
    run_id: str = Field(min_length=1, max_length=64)
    reason: str = Field("", max_length=1000)


class RunOut(BaseModel):
    target: str
    run_id: str
    measurements: int
    entries_recomputed: int
    lut_version: int


class Deleted(BaseModel):
    deleted: str
    rows: Dict[str, int]


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    subject: str
    detail: Dict[str, Any]
