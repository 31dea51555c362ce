"""Validation runs: whole networks timed end to end beside the LUT's prediction (issue 6).

Stored per (target, space, resolution); idempotent on (run_id, arch) there. Summaries count each
architecture once, by its latest result, so repeated runs do not weigh an architecture twice.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Connection

from lut_server import spaces
from lut_server.schemas import ValidationBatch
from lut_server.store import calibrations, jobs
from lut_server.store import validations as stored
from lut_server.store.registry import ensure_target, parse_target, target_row
from lut_server.tokens import check_device_name
from lut_server.util import BadInput, bounded_json, clean_text, dump_json, iso, now
from lutcore.calibration import Calibration, Validation, summarize


def canonical(conn: Connection, space: str, resolution: Optional[str]) -> Tuple[str, str]:
    """(space name, "HxW") as the cost matrix names them; BadInput for an unknown space or bad resolution."""
    sp = spaces.resolve(conn, space, resolution)
    return sp.name, sp.resolution_str


def store(conn: Connection, batch: ValidationBatch, actor: str) -> Dict[str, int]:
    """Insert the batch's results; re-posted (run_id, arch) pairs count as duplicates. The validate job
    it names is completed when ``actor`` holds it or nobody does (JobConflict when another board does)."""
    target_id = ensure_target(conn, parse_target(batch.target))
    if batch.job_id is not None:
        jobs.check_completable(conn, target_id, [batch.job_id], actor)
    name, res = canonical(conn, batch.space, batch.resolution)
    device = check_device_name(batch.device_name, "device_name")
    t = now()
    rows = [{"target_id": target_id, "space": name, "resolution": res,
             "arch": clean_text(r.arch, f"results[{i}].arch", 256), "kind": r.kind,
             "run_id": clean_text(batch.run_id, "run_id", 64), "device": device,
             "lut_version": batch.lut_version, "predicted_ms": r.predicted_ms, "measured_ms": r.measured_ms,
             "n_ops": r.n_ops, "rounds": dump_json(r.rounds, f"results[{i}].rounds"), "created_at": t,
             "in_context": None if r.in_context is None else dump_json(r.in_context, f"results[{i}].in_context"),
             "env": None if r.env is None else bounded_json(r.env, f"results[{i}].env")}
            for i, r in enumerate(batch.results)]
    accepted = stored.insert(conn, rows)
    out = {"accepted": accepted, "duplicates": len(rows) - accepted}
    if batch.job_id is not None:
        out["job_done"] = int(jobs.complete_validate(conn, target_id, batch.job_id, actor, t))
    return out


def rows_for(conn: Connection, tid: str, space: str, resolution: str) -> List[Dict[str, Any]]:
    """Every stored result for the triple, oldest first, in the GET /validations shape."""
    got = target_row(conn, tid)
    if got is None:
        return []
    return [_result(r) for r in stored.rows_for(conn, got[0], space, resolution)]


def _result(r: Any) -> Dict[str, Any]:
    return {"arch": r["arch"], "kind": r["kind"], "predicted_ms": r["predicted_ms"], "measured_ms": r["measured_ms"],
            "n_ops": r["n_ops"], "rounds": json.loads(r["rounds"]),
            "error": (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"], "lut_version": r["lut_version"],
            "device_name": r["device"], "run_id": r["run_id"], "created_at": iso(r["created_at"]),
            **_in_context(r["in_context"]), **({"env": json.loads(r["env"])} if r["env"] else {})}


def _in_context(text: Optional[str]) -> Dict[str, Any]:
    """The per-op in-context times and their sum, beside the isolated LUT sum (``predicted_ms``)."""
    if not text:
        return {}
    values = json.loads(text)
    return {"in_context": values, "in_context_ms": float(sum(values.values()))}


def latest(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One result per architecture: its newest (results come oldest first)."""
    by_arch: Dict[str, Dict[str, Any]] = {}
    for r in results:
        by_arch[r["arch"]] = r
    return [by_arch[a] for a in sorted(by_arch)]


def random_archs(conn: Connection, tid: str, space: str, resolution: str) -> List[str]:
    """Names of the random architectures validated for the triple (what a calibration is fitted on)."""
    return [r["arch"] for r in latest(rows_for(conn, tid, space, resolution)) if r["kind"] == "random"]


def with_sums(results: List[Dict[str, Any]], sums: Dict[str, float]) -> List[Dict[str, Any]]:
    """Results whose prediction is the LUT's sum now, where it can be summed: a calibration maps the
    sums it will be applied to, not those of the LUT version a network was once validated against."""
    out = []
    for r in results:
        if r["arch"] in sums:
            p = sums[r["arch"]]
            r = {**r, "predicted_ms": p, "error": (p - r["measured_ms"]) / r["measured_ms"]}
        out.append(r)
    return out


def as_validation(r: Dict[str, Any]) -> Validation:
    return Validation(r["arch"], r["predicted_ms"], r["measured_ms"], r["n_ops"])


def calibrated_errors(cal: Calibration, results: List[Dict[str, Any]]) -> List[float]:
    return [cal.error(as_validation(r)) for r in results]


def report(conn: Connection, tid: str, space: str, resolution: Optional[str]) -> Dict[str, Any]:
    """GET /validations: all results, the raw summary over the latest per architecture, and the stored
    calibration with its summary on the architectures it was not fitted on."""
    parse_target(tid)
    name, res = canonical(conn, space, resolution)
    results = rows_for(conn, tid, name, res)
    last = latest(results)
    rec = calibrations.stored(conn, tid, name, res)
    cal_dict = None
    cal_summary = None
    if rec is not None:
        cal_dict = rec["calibration"]
        held = [r for r in last if r["arch"] not in set(rec.get("fit_archs") or [])]
        cal_summary = summarize(calibrated_errors(Calibration.from_dict(cal_dict), held))
    ctx = [r for r in last if "in_context_ms" in r]
    return {"target": tid, "space": name, "resolution": res, "results": results,
            "summary": summarize([r["error"] for r in last]), "calibration": cal_dict,
            "calibrated_summary": cal_summary,
            # the same networks predicted by their ops' in-context times instead of the isolated ones
            "in_context_summary": summarize([(r["in_context_ms"] - r["measured_ms"]) / r["measured_ms"] for r in ctx])
            if ctx else None,
            "isolated_summary_same_networks": summarize([r["error"] for r in ctx]) if ctx else None}


def overview(conn: Connection) -> List[Dict[str, Any]]:
    """Per (space, resolution, target) with validations: the figures `lut status` shows."""
    out: List[Dict[str, Any]] = []
    for space, res, tid in stored.triples(conn):
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
