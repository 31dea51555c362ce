"""Validation runs: whole networks timed end to end beside the LUT's prediction (issue 6).

Stored per (target, space, resolution); idempotent on (run_id, arch) there. Summaries count each
architecture once, by its latest result, so repeated runs do not weigh an architecture twice.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, func, select
from typing_extensions import Annotated

from lut_server import spaces
from lut_server.registry import ensure_target, parse_target, target_row
from lut_server.schema import validations
from lut_server.tokens import check_device_name
from lut_server.util import BadInput, clean_text, dump_json, insert_ignore, iso, now
from lutcore.calibration import Calibration, Validation, summarize

MAX_MS = 1e7
PositiveMs = Annotated[float, Field(gt=0, le=MAX_MS, allow_inf_nan=False)]

EXAMPLE = {
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


class ValidationBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})
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


def canonical(conn: Connection, space: str, resolution: Optional[str]) -> Tuple[str, str]:
    """(space name, "HxW") as the cost matrix names them; BadInput for an unknown space or bad resolution."""
    sp = spaces.resolve(conn, space, resolution)
    return sp.name, sp.resolution_str


def store(conn: Connection, batch: ValidationBatch) -> Dict[str, int]:
    """Insert the batch's results; re-posted (run_id, arch) pairs count as duplicates."""
    target_id = ensure_target(conn, parse_target(batch.target))
    name, res = canonical(conn, batch.space, batch.resolution)
    device = check_device_name(batch.device_name, "device_name")
    t = now()
    rows = [{"target_id": target_id, "space": name, "resolution": res,
             "arch": clean_text(r.arch, f"results[{i}].arch", 256), "kind": r.kind,
             "run_id": clean_text(batch.run_id, "run_id", 64), "device": device,
             "lut_version": batch.lut_version, "predicted_ms": r.predicted_ms, "measured_ms": r.measured_ms,
             "n_ops": r.n_ops, "rounds": dump_json(r.rounds, f"results[{i}].rounds"), "created_at": t}
            for i, r in enumerate(batch.results)]
    before = _count(conn, target_id)
    insert_ignore(conn, validations, rows, ["target_id", "space", "resolution", "run_id", "arch"])
    accepted = _count(conn, target_id) - before
    return {"accepted": accepted, "duplicates": len(rows) - accepted}


def _count(conn: Connection, target_id: int) -> int:
    q = select(func.count()).select_from(validations).where(validations.c.target_id == target_id)
    return int(conn.execute(q).scalar_one())


def rows_for(conn: Connection, tid: str, space: str, resolution: str) -> List[Dict[str, Any]]:
    """Every stored result for the triple, oldest first, in the GET /validations shape."""
    got = target_row(conn, tid)
    if got is None:
        return []
    q = (select(validations).where(validations.c.target_id == got[0], validations.c.space == space,
                                   validations.c.resolution == resolution)
         .order_by(validations.c.created_at, validations.c.id))
    return [_result(r) for r in conn.execute(q).mappings()]


def _result(r: Any) -> Dict[str, Any]:
    return {"arch": r["arch"], "kind": r["kind"], "predicted_ms": r["predicted_ms"], "measured_ms": r["measured_ms"],
            "n_ops": r["n_ops"], "rounds": json.loads(r["rounds"]),
            "error": (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"], "lut_version": r["lut_version"],
            "device_name": r["device"], "run_id": r["run_id"], "created_at": iso(r["created_at"])}


def latest(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One result per architecture: its newest (results come oldest first)."""
    by_arch: Dict[str, Dict[str, Any]] = {}
    for r in results:
        by_arch[r["arch"]] = r
    return [by_arch[a] for a in sorted(by_arch)]


def as_validation(r: Dict[str, Any]) -> Validation:
    return Validation(r["arch"], r["predicted_ms"], r["measured_ms"], r["n_ops"])


def calibrated_errors(cal: Calibration, results: List[Dict[str, Any]]) -> List[float]:
    return [cal.error(as_validation(r)) for r in results]


def report(conn: Connection, tid: str, space: str, resolution: Optional[str]) -> Dict[str, Any]:
    """GET /validations: all results, the raw summary over the latest per architecture, and the stored
    calibration with its summary on the architectures it was not fitted on."""
    from lut_server import calibrations

    parse_target(tid)
    name, res = canonical(conn, space, resolution)
    results = rows_for(conn, tid, name, res)
    last = latest(results)
    stored = calibrations.stored(conn, tid, name, res)
    cal_dict = None
    cal_summary = None
    if stored is not None:
        cal_dict = stored["calibration"]
        held = [r for r in last if r["arch"] not in set(stored.get("fit_archs") or [])]
        cal_summary = summarize(calibrated_errors(Calibration.from_dict(cal_dict), held))
    return {"target": tid, "space": name, "resolution": res, "results": results,
            "summary": summarize([r["error"] for r in last]), "calibration": cal_dict,
            "calibrated_summary": cal_summary}


def overview(conn: Connection) -> List[Dict[str, Any]]:
    """Per (space, resolution, target) with validations: the figures `lut status` shows."""
    from lut_server.schema import targets

    q = (select(validations.c.space, validations.c.resolution, targets.c.tid).distinct()
         .join(targets, targets.c.id == validations.c.target_id)
         .order_by(validations.c.space, validations.c.resolution, targets.c.tid))
    out = []
    for space, res, tid in conn.execute(q).all():
        try:
            rep = report(conn, tid, space, res)
        except BadInput as e:  # a custom space whose definition is gone
            out.append({"space": space, "resolution": res, "target": tid, "error": str(e)})
            continue
        out.append({"space": space, "resolution": res, "target": tid, **_figures(rep["summary"]),
                    "calibrated": None if rep["calibrated_summary"] is None else _figures(rep["calibrated_summary"])})
    return out


def _figures(s: Dict[str, Any]) -> Dict[str, Any]:
    return {k: s.get(k) for k in ("n", "median_abs_error", "max_abs_error", "within_5pct", "within_10pct")}
