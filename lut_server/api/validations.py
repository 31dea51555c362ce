"""LUT truth: validation results posted by agents, their summaries, and the calibration fitted from them."""

from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, HTTPException, Query, Request

from lut_server import calibrations, validation_jobs, validations
from lut_server.auth import Reader, Writer, require_device
from lut_server.calibrations import FitIn
from lut_server.registry import parse_target
from lut_server.tokens import Principal
from lut_server.validation_jobs import ValidateJobIn
from lut_server.validations import ValidationBatch

router = APIRouter(tags=["validation"])

TARGET_Q = Query(..., max_length=512, description="target id, e.g. cpu-x86/pytorch-cpu/fp32@threads=1")
SPACE_Q = Query(..., min_length=1, max_length=256, description="space name")
RES_Q = Query(..., max_length=32, description="resolution HxW, e.g. 256x512")


@router.post("/validations", summary="Post whole-network timings beside the LUT's predictions (agent)")
def post_validations(batch: ValidationBatch, request: Request, p: Principal = Writer) -> Dict[str, int]:
    """Idempotent on (run_id, arch) for a (target, space, resolution): re-posts count as duplicates."""
    require_device(p, batch.device_name)
    with request.app.state.db.write() as conn:
        out = validations.store(conn, batch)
        if batch.job_id is not None:
            out["job_done"] = int(validation_jobs.complete(conn, batch.target, batch.job_id))
        return out


@router.post("/validations/jobs", summary="Queue validation work for the target's agents (one job per request)")
def queue_validation(body: ValidateJobIn, request: Request, _p: Principal = Writer) -> Dict[str, Any]:
    """An agent claims it like an op job once the op jobs before it are done, times the networks
    against the server's LUT, posts the validations naming the job and (``calibrate``) refits."""
    with request.app.state.db.write() as conn:
        return validation_jobs.enqueue(conn, body, request.app.state.settings.max_attempts)


@router.get("/validations", summary="Validation results with their errors, summary and calibration")
def get_validations(request: Request, target: str = TARGET_Q, space: str = SPACE_Q, resolution: str = RES_Q,
                    _p: Any = Reader) -> Dict[str, Any]:
    with request.app.state.db.read() as conn:
        return validations.report(conn, target, space, resolution)


@router.post("/calibrations/fit", summary="Fit a calibration on random architectures, score it on the rest")
def fit_calibration(body: FitIn, request: Request, _p: Principal = Writer) -> Dict[str, Any]:
    with request.app.state.db.write() as conn:
        return calibrations.fit(conn, body)


@router.get("/calibrations", summary="The stored calibration of a (target, space, resolution)")
def get_calibration(request: Request, target: str = TARGET_Q, space: str = SPACE_Q, resolution: str = RES_Q,
                    _p: Any = Reader) -> Dict[str, Any]:
    parse_target(target)
    with request.app.state.db.read() as conn:
        name, res = validations.canonical(conn, space, resolution)
        rec = calibrations.stored(conn, target, name, res)
    if rec is None:
        raise HTTPException(404, f"no calibration for {name}@{res} on {target}; fit one with "
                                 "POST /calibrations/fit after validating random architectures")
    return rec
