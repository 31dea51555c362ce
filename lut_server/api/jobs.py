"""Job queue endpoints for agents."""

from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, HTTPException, Path, Request

from lut_server import jobs
from lut_server.auth import Writer
from lut_server.models import ClaimIn, FailIn, HeartbeatIn, HeartbeatOut, JobState
from lut_server.registry import parse_target
from lut_server.tokens import Principal

router = APIRouter(tags=["jobs"])
JOB_ID = Path(ge=1, le=2**62, description="job id")


@router.post("/jobs/claim", summary="Claim up to n jobs of a target under a lease (atomic)")
def claim(body: ClaimIn, request: Request, p: Principal = Writer) -> Dict[str, Any]:
    parse_target(body.target)
    with request.app.state.db.write() as conn:
        got = jobs.claim(conn, body.target, p.actor, body.n, body.lease_s)
    request.app.state.metrics.claimed(len(got))
    return {"jobs": got}


@router.post("/jobs/heartbeat", response_model=HeartbeatOut, summary="Extend the leases of held jobs")
def heartbeat(body: HeartbeatIn, request: Request, p: Principal = Writer) -> Dict[str, Any]:
    with request.app.state.db.write() as conn:
        return jobs.heartbeat(conn, body.job_ids, p.actor, body.lease_s)


def _call(request: Request, fn: Any, *args: Any) -> Dict[str, Any]:
    try:
        with request.app.state.db.write() as conn:
            return fn(conn, *args)
    except jobs.JobNotFound as e:
        raise HTTPException(404, str(e)) from None
    except jobs.JobConflict as e:
        raise HTTPException(409, str(e)) from None


@router.post("/jobs/{job_id}/fail", response_model=JobState, summary="Report a failed job; parked after max_attempts")
def fail(body: FailIn, request: Request, job_id: int = JOB_ID, p: Principal = Writer) -> Dict[str, Any]:
    return _call(request, jobs.fail, job_id, p.actor, body.error)


@router.post("/jobs/{job_id}/release", response_model=JobState, summary="Return a held job without an attempt")
def release(request: Request, job_id: int = JOB_ID, p: Principal = Writer) -> Dict[str, Any]:
    return _call(request, jobs.release, job_id, p.actor)
