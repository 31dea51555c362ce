"""LUT truth: validation results posted by agents, their summaries, and the calibration fitted from them."""

from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import Connection

from lut_server import calibrations, validation_jobs, validations
from lut_server.api.deps import Db, ReadConn, write
from lut_server.auth import Reader, Registrar, Writer, require_board, require_class
from lut_server.db import Database
from lut_server.schemas import (
    CalibrationRecord,
    FitIn,
    FitOut,
    ValidateJobIn,
    ValidateJobOut,
    ValidationBatch,
    ValidationReport,
    ValidationsPosted,
)
from lut_server.store import calibrations as stored_calibrations
from lut_server.store.registry import parse_target
from lut_server.tokens import Principal

router = APIRouter(tags=["validation"])

TARGET_Q = Query(..., max_length=512, description="target id, e.g. cpu-x86/pytorch-cpu/fp32@threads=1")
SPACE_Q = Query(..., min_length=1, max_length=256, description="space name")
RES_Q = Query(..., max_length=32, description="resolution HxW, e.g. 256x512")


@router.post("/validations", response_model=ValidationsPosted, response_model_exclude_none=True,
             summary="Post whole-network timings beside the LUT's predictions (agent)")
def post_validations(batch: ValidationBatch, p: Principal = Writer, db: Database = Db) -> Dict[str, Any]:
    """Idempotent on (run_id, arch) for a (target, space, resolution): re-posts count as duplicates.
    The job named by `job_id` is completed only for its holder (409 when another board holds it)."""
    require_board(p, batch.device_name, parse_target(batch.target).device)
    return write(db, lambda c: validations.store(c, batch, p.actor))


@router.post("/validations/jobs", response_model=ValidateJobOut,
             summary="Queue validation work for the target's agents (search, agent or admin)")
def queue_validation(body: ValidateJobIn, request: Request, p: Principal = Registrar,
                     db: Database = Db) -> Dict[str, Any]:
    """An agent claims it like an op job once the op jobs before it are done, times the networks
    against the server's LUT, posts the validations naming the job and (``calibrate``) refits."""
    if p.role == "agent":
        require_class(p, parse_target(body.target).device)
    attempts = request.app.state.settings.max_attempts
    with db.read() as conn:  # build and check the networks before the write lock
        prepared = validation_jobs.prepare(conn, body)
    return write(db, lambda c: validation_jobs.enqueue(c, body, attempts, prepared))


@router.get("/validations", response_model=ValidationReport,
            summary="Validation results with their errors, summary and calibration")
def get_validations(target: str = TARGET_Q, space: str = SPACE_Q, resolution: str = RES_Q, _p: Any = Reader,
                    conn: Connection = ReadConn) -> Dict[str, Any]:
    return validations.report(conn, target, space, resolution)


@router.post("/calibrations/fit", response_model=FitOut,
             summary="Fit a calibration on random architectures, score it on the rest (admin or agent of the class)")
def fit_calibration(body: FitIn, p: Principal = Writer, db: Database = Db) -> Dict[str, Any]:
    require_class(p, parse_target(body.target).device)
    return write(db, lambda c: calibrations.fit(c, body))


@router.get("/calibrations", response_model=CalibrationRecord,
            summary="The stored calibration of a (target, space, resolution)")
def get_calibration(target: str = TARGET_Q, space: str = SPACE_Q, resolution: str = RES_Q, _p: Any = Reader,
                    conn: Connection = ReadConn) -> Dict[str, Any]:
    parse_target(target)
    name, res = validations.canonical(conn, space, resolution)
    rec = stored_calibrations.stored(conn, target, name, res)
    if rec is None:
        raise HTTPException(404, f"no calibration for {name}@{res} on {target}; fit one with "
                                 "POST /calibrations/fit after validating random architectures")
    return rec
