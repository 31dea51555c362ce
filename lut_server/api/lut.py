"""Targets, measurements, lookups, status, export and import."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import Connection

from lut_server import compare, exchange, ingest, predicted, spaces, status
from lut_server.api.deps import Db, ReadConn, write
from lut_server.auth import Admin, Reader, Writer, require_board
from lut_server.db import Database
from lut_server.schemas import CompareOut, ImportOut, IngestOut, LookupIn, LookupOut, StatusOut, TargetView
from lut_server.store import audit
from lut_server.store.entries import lookup
from lut_server.store.registry import parse_target, target_row
from lut_server.tokens import Principal
from lut_server.util import BadInput
from lutcore.records import MeasurementBatch

router = APIRouter(tags=["lut"])

BATCH_EXAMPLE = {
    "run_id": "0b8f7c3e-run-2024-05-01",
    "target": {"device": "xavier", "backend": "tensorrt", "precision": "fp16", "batch": 1, "settings": {}},
    "device_name": "xavier-01",
    "fingerprint": {"jetpack": "5.1.2", "tensorrt": "8.5.2"},
    "items": [{
        "op": {"key": "conv:k3_d1_g1_bn_relu:c3x64x128->c16:s2",
               "spec": {"family": "conv", "c_in": 3, "h": 64, "w": 128, "c_out": 16, "stride": 2, "batch": 1,
                        "kernel": 3, "dilation": 1, "groups": 1, "bn": True, "bias": False, "act": "relu"}},
        "stats": {"median_ms": 0.21, "mean_ms": 0.22, "std_ms": 0.01, "min_ms": 0.2, "p10_ms": 0.205,
                  "p90_ms": 0.23, "n": 200},
        "job_id": None, "measured_at": "2024-05-01T12:00:00Z", "env": {"gpu_temp_c": 41}}],
}


@router.get("/targets", response_model=List[TargetView], summary="Known targets, LUT version, ops measured")
def list_targets(_p: Any = Reader, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return status.targets_view(conn)


@router.post("/measurements", response_model=IngestOut, summary="Post a batch of measurements (agent)",
             openapi_extra={"requestBody": {"content": {"application/json": {"example": BATCH_EXAMPLE}}}})
def post_measurements(batch: MeasurementBatch, request: Request, p: Principal = Writer,
                      db: Database = Db) -> Dict[str, Any]:
    """Partial acceptance: valid items are stored, invalid ones listed with index, key and reason.
    Re-posting the same (run_id, key) for a target is a no-op counted in `duplicates`. 403 for another
    board or another device class; 409 when an item names a job another board holds."""
    require_board(p, batch.device_name, batch.target.device)
    attempts = request.app.state.settings.max_attempts
    out = write(db, lambda c: ingest.ingest(c, batch, p.actor, attempts))
    request.app.state.metrics.accepted(out["accepted"], len(out["rejected"]))
    return out


@router.post("/lookup", response_model=LookupOut, response_model_exclude_unset=True,
             summary="LUT values of many keys; unmeasured keys in `missing`")
def post_lookup(body: LookupIn, request: Request, _p: Any = Reader, conn: Connection = ReadConn) -> Dict[str, Any]:
    """`missing: "predict"` adds `predicted` {key: value_ms, lo_ms, hi_ms} for unmeasured keys (422 when
    the target has too few measured entries to fit a predictor); `values` stays measured-only."""
    parse_target(body.target)
    if body.missing == "predict":
        predicted.check_lookup(body.keys)
    out = lookup(conn, body.target, body.keys, body.metric)
    if body.missing == "predict":
        out = predicted.fill_lookup(conn, request.app.state.predictors, out, body.metric)
    return out


@router.get("/status", response_model=StatusOut, summary="Targets, coverage, queue depth, parked jobs")
def get_status(_p: Any = Reader, conn: Connection = ReadConn) -> Dict[str, Any]:
    return status.status(conn)


@router.get("/compare", response_model=CompareOut, summary="Op by op: an old target's LUT against a new one's")
def get_compare(old: str = Query(..., max_length=512), new: str = Query(..., max_length=512),
                space: Optional[str] = Query(None, max_length=256),
                resolution: Optional[str] = Query(None, max_length=32),
                worst: int = Query(compare.WORST, ge=1, le=compare.MAX_WORST), _p: Any = Reader,
                conn: Connection = ReadConn) -> Dict[str, Any]:
    """For the op keys both targets hold (or, with `space`, those of the space's ops): count, median
    new/old, median |new/old - 1|, share within +-10%, the ops furthest apart; and the keys only one holds."""
    try:
        return compare.compare(conn, old, new, space, resolution, worst)
    except compare.UnknownTarget as e:
        raise HTTPException(404, str(e)) from None


@router.get("/export", response_model=Dict[str, Any], summary="The LUT as a `nas-lut/1` document (one target, or all)")
def get_export(request: Request, target: Optional[str] = Query(None, max_length=512),
               missing: Literal["report", "predict"] = Query("report", description=(
                   "predict: add the space's unmeasured ops as predicted entries (predicted: true, lo_ms, hi_ms); "
                   "needs target and space")),
               space: Optional[str] = Query(None, max_length=256, description="with missing=predict"),
               resolution: Optional[str] = Query(None, max_length=32, description="with missing=predict"),
               _p: Any = Reader, conn: Connection = ReadConn) -> Dict[str, Any]:
    if missing == "predict" and (target is None or space is None):
        raise BadInput("missing=predict exports one target's predicted entries for one space: give target and space")
    if target is not None:
        parse_target(target)
        if target_row(conn, target) is None:
            raise HTTPException(404, f"unknown target {target!r}")
    sp = spaces.resolve(conn, space, resolution) if missing == "predict" and space is not None else None
    doc = exchange.export_doc(conn, target)
    return doc if sp is None else predicted.fill_export(conn, request.app.state.predictors, doc, sp)


@router.post("/import", response_model=ImportOut, summary="Merge a `nas-lut/1` document (admin token)")
def post_import(doc: Dict[str, Any], p: Principal = Admin, db: Database = Db) -> Dict[str, Any]:
    def tx(c: Connection) -> Dict[str, Any]:
        out = exchange.import_doc(c, doc)
        audit.record(c, p.who, "import", f"{out['targets']} target(s)", out)
        return out

    return write(db, tx)
