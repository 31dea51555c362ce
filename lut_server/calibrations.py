"""Calibration of the LUT's sums against whole-network timings, one per (target, space, resolution).

Fitted on a seeded random share of the *random* architectures' latest validations and scored on the
rest (held-out random plus published and named ones), so the figures it reports are out of sample.
The stored calibration travels with the cost matrix and the export document to the search client.
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from lut_server import validations as val
from lut_server.registry import parse_target, target_row
from lut_server.schema import calibrations, targets
from lut_server.util import BadInput, dump_json, iso, now, upsert
from lutcore.calibration import FEATURES, MODELS, Calibration, summarize


class FitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "cpu-x86/pytorch-cpu/fp32@threads=1", "space": "squeezenas-small", "resolution": "256x512",
         "model": "auto", "fit_share": 0.5, "seed": 0}]})
    target: str = Field(max_length=512)
    space: str = Field(min_length=1, max_length=256)
    resolution: str = Field(max_length=32)
    model: str = Field("auto", description="auto (the candidate with the least leave-one-out error on the fitting "
                       "set) or one of " + ", ".join(MODELS))
    features: Optional[List[str]] = Field(None, min_length=1, max_length=len(FEATURES),
                                          description="fit exactly these (overrides model)")
    fit_share: float = Field(0.5, gt=0, le=1, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**63 - 1)


def fit(conn: Connection, body: FitIn) -> Dict[str, Any]:
    """Fit, score on the held-out architectures, store (replacing the previous one) and return it all."""
    parse_target(body.target)
    name, res = val.canonical(conn, body.space, body.resolution)
    for f in body.features or ():
        if f not in FEATURES:
            raise BadInput(f"features: unknown feature {f!r}; known: {', '.join(FEATURES)}")
    if body.model != "auto" and body.model not in MODELS:
        raise BadInput(f"model: unknown model {body.model!r}; known: auto, {', '.join(MODELS)}")
    last = val.latest(val.rows_for(conn, body.target, name, res))
    rnd = [r for r in last if r["kind"] == "random"]
    if body.features:
        what, need = str(body.features), len(body.features) + 1
    elif body.model == "auto":
        what, need = "a model chosen by cross-validation", 3
    else:
        what, need = body.model, len(MODELS[body.model]) + 1
    if len(rnd) < need:
        raise BadInput(f"need at least {need} random architectures validated for {name}@{res} on {body.target} "
                       f"to fit {what}; have {len(rnd)} (run `profiler-agent validate --archs random:20`)")
    order = sorted(r["arch"] for r in rnd)
    random.Random(body.seed).shuffle(order)
    n_fit = min(len(order), max(need, round(body.fit_share * len(order))))
    fit_archs = set(order[:n_fit])
    fit_set = [r for r in rnd if r["arch"] in fit_archs]
    held = [r for r in last if r["arch"] not in fit_archs]
    try:
        vs = [val.as_validation(r) for r in fit_set]
        if body.features:
            cal = Calibration.fit(vs, body.features)
        elif body.model == "auto":
            cal = Calibration.select(vs)
        else:
            cal = Calibration.fit_model(vs, body.model)
    except ValueError as e:
        raise BadInput(f"cannot fit a calibration: {e}") from None
    got = target_row(conn, body.target)
    assert got is not None  # rows_for found validations, so the target exists
    out = {
        "calibration": cal.to_dict(),
        "fit_summary": summarize(val.calibrated_errors(cal, fit_set)),
        "heldout_summary": summarize(val.calibrated_errors(cal, held)),
        "raw_summary": summarize([r["error"] for r in held]),
        "n_fit": len(fit_set),
        "n_heldout": len(held),
    }
    record = {**out, "features": list(body.features or MODELS.get(cal.model, ())), "model": cal.model or "custom",
              "fit_share": body.fit_share, "seed": body.seed,
              "fit_archs": sorted(fit_archs)}
    save(conn, got[0], name, res, record, got[1], now())
    return out


def save(conn: Connection, target_id: int, space: str, resolution: str, record: Dict[str, Any],
         lut_version: Optional[int], created_at: float) -> None:
    fit_doc = {k: v for k, v in record.items() if k != "calibration"}
    upsert(conn, calibrations, [{"target_id": target_id, "space": space, "resolution": resolution,
                                 "calibration": dump_json(record["calibration"], "calibration"),
                                 "fit": dump_json(fit_doc, "calibration fit"), "lut_version": lut_version,
                                 "created_at": created_at}], ["target_id", "space", "resolution"])


def _record(r: Any, tid: str) -> Dict[str, Any]:
    return {"target": tid, "space": r["space"], "resolution": r["resolution"],
            "calibration": json.loads(r["calibration"]), **json.loads(r["fit"]),
            "lut_version": r["lut_version"], "created_at": iso(r["created_at"])}


def stored(conn: Connection, tid: str, space: str, resolution: str) -> Optional[Dict[str, Any]]:
    """The stored calibration record (calibration, summaries, features, fit_archs, ...) or None."""
    got = target_row(conn, tid)
    if got is None:
        return None
    r = conn.execute(select(calibrations).where(calibrations.c.target_id == got[0], calibrations.c.space == space,
                                                calibrations.c.resolution == resolution)).mappings().first()
    return None if r is None else _record(r, tid)


def for_target(conn: Connection, target_id: int, tid: str) -> List[Dict[str, Any]]:
    q = (select(calibrations).where(calibrations.c.target_id == target_id)
         .order_by(calibrations.c.space, calibrations.c.resolution))
    return [_record(r, tid) for r in conn.execute(q).mappings()]


def stamp(conn: Connection, tid: str, space: str, resolution: str) -> Optional[float]:
    """When the triple's calibration was stored (None: none), so cached cost matrices notice a new fit."""
    q = (select(calibrations.c.created_at).join(targets, targets.c.id == calibrations.c.target_id)
         .where(targets.c.tid == tid, calibrations.c.space == space, calibrations.c.resolution == resolution))
    v = conn.execute(q).scalar()
    return None if v is None else float(v)


def label(space: str, resolution: str) -> str:
    """How the export document's per-target ``calibration`` mapping names a (space, resolution)."""
    return f"{space}@{resolution}"


def stored_by_id(conn: Connection, target_id: int, space: str, resolution: str) -> Optional[float]:
    """created_at of the stored calibration of a target row, or None (import keeps the newer one)."""
    q = select(calibrations.c.created_at).where(calibrations.c.target_id == target_id, calibrations.c.space == space,
                                                calibrations.c.resolution == resolution)
    v = conn.execute(q).scalar()
    return None if v is None else float(v)
