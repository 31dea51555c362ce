"""Job queue endpoints: agents claim, heartbeat, fail and release; admins requeue and cancel."""

from __future__ import annotations

from typing import Any, Dict, List

from fastapi import APIRouter, Path, Request
from sqlalchemy import Connection

from lut_server import plans
from lut_server.api.deps import Db, Now, write
from lut_server.auth import Admin, Writer, require_class
from lut_server.clock import Clock
from lut_server.db import Database
from lut_server.schemas import ClaimIn, ClaimOut, FailIn, HeartbeatIn, HeartbeatOut, JobState, Requeued, RequeueIn
from lut_server.store import audit, jobs
from lut_server.store.registry import parse_target, target_row
from lut_server.tokens import Principal

router = APIRouter(tags=["jobs"])
JOB_ID = Path(ge=1, le=2**62, description="job id")


@router.post("/jobs/claim", response_model=ClaimOut, summary="Claim up to n jobs of a target under a lease (atomic)")
def claim(body: ClaimIn, request: Request, p: Principal = Writer, db: Database = Db,
          clock: Clock = Now) -> Dict[str, Any]:
    require_class(p, parse_target(body.target).device)

    def tx(c: Connection) -> List[Dict[str, Any]]:
        got = target_row(c, body.target)
        return [] if got is None else jobs.claim(c, got[0], body.target, p.actor, body.n, body.lease_s, clock())

    out = write(db, tx)
    request.app.state.metrics.claimed(len(out))
    return {"jobs": out}


@router.post("/jobs/heartbeat", response_model=HeartbeatOut, summary="Extend the leases of held jobs")
def heartbeat(body: HeartbeatIn, p: Principal = Writer, db: Database = Db, clock: Clock = Now) -> Dict[str, Any]:
    """Only the caller's own leases are extended; any other id is reported `lost`."""
    return write(db, lambda c: jobs.heartbeat(c, body.job_ids, p.actor, body.lease_s, clock()))


@router.post("/jobs/{job_id}/fail", response_model=JobState, summary="Report a failed job; parked after max_attempts")
def fail(body: FailIn, request: Request, job_id: int = JOB_ID, p: Principal = Writer, db: Database = Db,
         clock: Clock = Now) -> Dict[str, Any]:
    """409 unless the caller holds the job."""
    def tx(c: Connection) -> Dict[str, Any]:
        out = jobs.fail(c, job_id, p.actor, body.error, clock())
        if out["status"] == "parked":
            _settled(c, job_id, request, clock())
        return out

    return write(db, tx)


def _settled(c: Connection, job_id: int, request: Request, t: float) -> None:
    """A job left the queue unmeasured: a measurement plan waiting on it moves on (``lut_server.plans``)."""
    plans.after_measurements(c, int(jobs.get(c, job_id)["target_id"]), request.app.state.settings.max_attempts, t)


@router.post("/jobs/{job_id}/release", response_model=JobState, summary="Return a held job without an attempt")
def release(job_id: int = JOB_ID, p: Principal = Writer, db: Database = Db, clock: Clock = Now) -> Dict[str, Any]:
    """409 unless the caller holds the job."""
    return write(db, lambda c: jobs.release(c, job_id, p.actor, clock()))


@router.post("/jobs/requeue", response_model=Requeued, summary="Send parked jobs back to the queue (admin)")
def requeue(body: RequeueIn, p: Principal = Admin, db: Database = Db, clock: Clock = Now) -> Dict[str, Any]:
    """Attempts are reset. Only a target's jobs with `target`, only the named ones with `job_ids`."""
    def tx(c: Connection) -> List[int]:
        target_id = None
        if body.target is not None:
            parse_target(body.target)
            got = target_row(c, body.target)
            if got is None:
                return []
            target_id = got[0]
        ids = jobs.requeue_parked(c, clock(), target_id, body.job_ids)
        audit.record(c, p.who, "jobs.requeue", body.target or "all targets", {"job_ids": ids})
        return ids

    return {"requeued": write(db, tx)}


@router.post("/jobs/{job_id}/cancel", response_model=JobState, summary="Cancel an open job (admin)")
def cancel(request: Request, job_id: int = JOB_ID, p: Principal = Admin, db: Database = Db,
           clock: Clock = Now) -> Dict[str, Any]:
    def tx(c: Connection) -> Dict[str, Any]:
        out = jobs.cancel(c, job_id, clock())
        _settled(c, job_id, request, clock())
        audit.record(c, p.who, "job.cancel", f"job {job_id}")
        return out

    return write(db, tx)
