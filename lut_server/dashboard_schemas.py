"""Response bodies of the live dashboard's JSON endpoints (``/api/v1/dashboard/*``), kept apart from
schemas.py: they are the page's own contract, not the agents' or the search clients'."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import BaseModel

from lut_server.schemas import ParkedJob


class SpaceCoverage(BaseModel):
    space: str
    resolution: str
    target: str
    measured: int
    total: int
    fraction: float
    identities: int  # identity (skip) keys counted in measured and total: free, so measured from the start
    error: Optional[str]


class QueueRow(BaseModel):
    target: str
    queued: int
    claimed: int
    done: int
    parked: int
    cancelled: int
    done_per_min: float
    eta_s: Optional[float]  # None: work is open but nothing finished in the rate window


class Overview(BaseModel):
    coverage: List[SpaceCoverage]
    queue: List[QueueRow]
    totals: Dict[str, int]
    measurements: int
    generated_at: str


class HeldJob(BaseModel):
    id: int
    kind: str
    target: str
    key: Optional[str]
    lease_expires_at: Optional[str]


class Agent(BaseModel):
    name: str
    device_class: Optional[str]
    fingerprint_digest: Optional[str]
    fingerprint: Optional[Dict[str, Any]]
    last_heartbeat: Optional[str]
    last_post: Optional[str]
    last_seen: Optional[str]
    seconds_since_seen: Optional[float]
    online: bool
    measurements: int
    jobs: List[HeldJob]
    jobs_held: int


class TruthPoint(BaseModel):
    arch: str
    kind: str
    predicted_ms: float
    measured_ms: float
    error: float


class HistogramBin(BaseModel):
    lo: Optional[float]
    hi: Optional[float]
    n: int


class Truth(BaseModel):
    space: str
    resolution: str
    target: str
    error: Optional[str]
    points: List[TruthPoint] = []
    histogram: List[HistogramBin] = []
    summary: Optional[Dict[str, Any]] = None
    calibrated_summary: Optional[Dict[str, Any]] = None
    calibration: Optional[Dict[str, Any]] = None  # the cost matrix's: model, coefficients, stale, drift


class Heatmap(BaseModel):
    space: str
    resolution: str
    target: str
    lut_version: int
    candidates: List[str]
    matrix: List[List[Optional[float]]]
    mask: List[List[bool]]  # true: the candidate cannot sit at that layer
    coverage: Dict[str, Any]


class CellTypeHeatmap(BaseModel):
    cell_type: str
    cells: int  # how many cells of this type the matrix sums over
    matrix: List[List[Optional[float]]]  # [edges x ops], ms; null: a cell of this type lacks the entry
    missing: int  # null entries in matrix


class CellHeatmaps(BaseModel):
    space: str
    resolution: str
    target: str
    error: Optional[str]
    lut_version: Optional[int] = None
    coverage: Optional[Dict[str, Any]] = None
    ops: List[str] = []
    edges: List[str] = []  # row labels, "src->dst" node ids
    types: List[CellTypeHeatmap] = []


class FleetBoard(BaseModel):
    name: str
    ops: int
    compared: int
    disagrees: int
    median_abs_deviation: Optional[float]


class Disagreement(BaseModel):
    target: str
    key: str
    board: str
    board_ms: float
    peers_ms: float
    peers: int
    deviation: float


class FleetClass(BaseModel):
    device_class: str
    targets: List[str]
    tolerance: float
    boards: List[FleetBoard]
    disagreements: List[Disagreement]
    disagreements_total: int


class Session(BaseModel):
    role: Optional[str]
    read_token_required: bool
    admin: bool
    poll_s: float


__all__ = ["Agent", "CellHeatmaps", "FleetClass", "Heatmap", "Overview", "ParkedJob", "Session", "Truth"]
