"""The export document's optional LUT-truth sections, per target (docs/api.md, "Export document").

- ``validations``: every stored validation result (lossless; ``created_at`` as ISO 8601; ``in_context``
  and ``env`` when the backend gave them).
- ``calibrations``: every stored calibration record with its fit figures (lossless).
- ``calibration``: ``{"space@HxW": {a, b, c, ...}}``, derived, what search_client applies.

Documents without them (older exports) import as before.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, List

from pydantic import ValidationError
from sqlalchemy import Connection

from lut_server.ingest import describe
from lut_server.schemas import ValidationResult
from lut_server.store import calibrations
from lut_server.store import validations as stored_validations
from lut_server.tokens import check_device_name
from lut_server.util import BadInput, bounded_json, clean_text, dump_json, iso, now
from lutcore.lutdoc import TargetLut

RESULT_FIELDS = ("arch", "kind", "predicted_ms", "measured_ms", "n_ops", "rounds", "in_context", "env")


def export_sections(conn: Connection, target_id: int, tid: str) -> Dict[str, Any]:
    """The sections for one target; empty ones are left out so plain LUT exports look as before."""
    vals = [{"space": r["space"], "resolution": r["resolution"], "arch": r["arch"], "kind": r["kind"],
             "run_id": r["run_id"], "device_name": r["device"], "lut_version": r["lut_version"],
             "predicted_ms": r["predicted_ms"], "measured_ms": r["measured_ms"], "n_ops": r["n_ops"],
             "rounds": json.loads(r["rounds"]), "created_at": iso(r["created_at"]),
             **{k: json.loads(r[k]) for k in ("in_context", "env") if r[k]}}
            for r in stored_validations.for_target(conn, target_id)]
    cals = calibrations.for_target(conn, target_id, tid)
    out: Dict[str, Any] = {}
    if vals:
        out["validations"] = vals
    if cals:
        out["calibrations"] = [{k: v for k, v in c.items() if k != "target"} for c in cals]
        out["calibration"] = {calibrations.label(c["space"], c["resolution"]): c["calibration"] for c in cals}
    return out


def _epoch(text: Any, where: str) -> float:
    if text is None:
        return now()
    try:
        d = _dt.datetime.fromisoformat(clean_text(text, where, 64).replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{where}: not an ISO 8601 time: {text!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def _version(v: Any, where: str) -> Any:
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**31):
        raise BadInput(f"{where}: must be a non-negative integer or null")
    return v


def import_sections(conn: Connection, target_id: int, tdoc: TargetLut, where: str) -> int:
    """Merge a target's validations (new (run_id, arch) pairs) and calibrations (the newer one wins);
    returns the number of validations added. The shapes were checked by ``lutcore.lutdoc``; this bounds
    them as ``POST /validations`` does."""
    rows: List[Dict[str, Any]] = []
    for i, v in enumerate(tdoc.validations or []):
        vw = f"{where}.validations[{i}]"
        try:
            r = ValidationResult.model_validate(v.model_dump(include=set(RESULT_FIELDS), exclude_none=True))
        except ValidationError as e:
            raise BadInput(f"{vw}: {describe(e)}") from None
        run_id = clean_text(v.run_id, f"{vw}.run_id", 64)
        if len(run_id) < 8:
            raise BadInput(f"{vw}.run_id: at least 8 characters")
        rows.append({"target_id": target_id, "space": clean_text(v.space, f"{vw}.space", 256),
                     "resolution": clean_text(v.resolution, f"{vw}.resolution", 32), "arch": r.arch,
                     "kind": r.kind, "run_id": run_id,
                     "device": check_device_name(v.device_name, f"{vw}.device_name"),
                     "lut_version": _version(v.lut_version, f"{vw}.lut_version"),
                     "predicted_ms": r.predicted_ms, "measured_ms": r.measured_ms, "n_ops": r.n_ops,
                     "rounds": dump_json(r.rounds), "created_at": _epoch(v.created_at, f"{vw}.created_at"),
                     "in_context": None if r.in_context is None else dump_json(r.in_context, f"{vw}.in_context"),
                     "env": None if r.env is None else bounded_json(r.env, f"{vw}.env")})
    added = stored_validations.insert(conn, rows)
    for i, c in enumerate(tdoc.calibrations or []):
        cw = f"{where}.calibrations[{i}]"
        space = clean_text(c.space, f"{cw}.space", 256)
        res = clean_text(c.resolution, f"{cw}.resolution", 32)
        created = _epoch(c.created_at, f"{cw}.created_at")
        mine = calibrations.stored_by_id(conn, target_id, space, res)
        if mine is not None and mine >= created:
            continue  # ours is as new or newer
        record = {k: v for k, v in c.dump().items() if k not in ("space", "resolution", "lut_version", "created_at",
                                                                 "target")}
        calibrations.save(conn, target_id, space, res, record, _version(c.lut_version, f"{cw}.lut_version"), created)
    return added
