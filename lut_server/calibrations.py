"""Calibration of the LUT's sums against whole-network timings, one per (target, space, resolution).

Fitted on a seeded random share of the *random* architectures' latest validations and scored on the
rest (held-out random plus published and named ones), so the figures it reports are out of sample.
The stored calibration travels with the cost matrix and the export document to the search client.
"""

from __future__ import annotations

from typing import Any, Dict

from sqlalchemy import Connection

from lut_server import staleness
from lut_server import validations as val
from lut_server.schemas import FitIn
from lut_server.store.calibrations import save
from lut_server.store.registry import parse_target, target_row
from lut_server.util import BadInput, now
from lutcore.calibration import FEATURES, MODELS, Calibration, fit_split, summarize


def fit(conn: Connection, body: FitIn) -> Dict[str, Any]:
    """Fit, score on the held-out architectures, store (replacing the previous one) and return it all."""
    parse_target(body.target)
    name, res = val.canonical(conn, body.space, body.resolution)
    for f in body.features or ():
        if f not in FEATURES:
            raise BadInput(f"features: unknown feature {f!r}; known: {', '.join(FEATURES)}")
    if body.model != "auto" and body.model not in MODELS:
        raise BadInput(f"model: unknown model {body.model!r}; known: auto, {', '.join(MODELS)}")
    got = target_row(conn, body.target)
    last = val.latest(val.rows_for(conn, body.target, name, res))
    if got is not None:
        last = val.with_sums(last, staleness.lut_sums(conn, got[0], [r["arch"] for r in last], res))
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
    fit_archs = set(fit_split([r["arch"] for r in rnd], body.fit_share, body.seed, minimum=need))
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
              "fit_archs": sorted(fit_archs),
              "basis": {r["arch"]: round(r["predicted_ms"], 9) for r in fit_set}}
    save(conn, got[0], name, res, record, got[1], now())
    return out


