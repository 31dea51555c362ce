"""Validation work as jobs: an agent on the board claims it like an op and posts validations.

A ``validate`` job names no op; its payload says which architectures of which space to time.
It waits behind the op jobs (a lower priority), since it needs their LUT entries, and is done
when a validation batch that names it arrives.
"""

from __future__ import annotations

from typing import Any, Dict

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select, update

from lut_server import validations as val
from lut_server.registry import ensure_target, parse_target, target_row
from lut_server.schema import jobs
from lut_server.util import BadInput, dump_json, now
from lutcore.errors import LutError
from lutcore.spaces import get_arch, parse_arch_list

MAX_ARCHS = 500


class ValidateJobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"target": "cpu-x86/pytorch-cpu/fp32@threads=1", "space": "squeezenas-small", "resolution": "256x512",
         "archs": "published,random:20", "seed": 0, "rounds": 5, "calibrate": True}]})
    target: str = Field(max_length=512)
    space: str = Field(min_length=1, max_length=256)
    resolution: str = Field(max_length=32)
    archs: str = Field("published,random:20", min_length=1, max_length=4000,
                       description="published, random:N and architecture names, comma separated")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the first random architecture")
    rounds: int = Field(5, ge=1, le=100)
    max_time_per_net: float = Field(0.5, gt=0, le=60, allow_inf_nan=False, description="seconds per network per round")
    calibrate: bool = Field(True, description="fit the calibration once the validations are in")
    priority: int = Field(-1, ge=-1000, le=1000, description="op jobs have 0 or more, so they go first")


def enqueue(conn: Connection, body: ValidateJobIn, max_attempts: int) -> Dict[str, Any]:
    """One job per distinct request; asking again while it is open returns the open one."""
    tid = parse_target(body.target)
    name, res = val.canonical(conn, body.space, body.resolution)
    try:
        names = parse_arch_list(body.archs, name, body.seed, limit=MAX_ARCHS)
        for n in names:  # agents build each one by name: refuse what they could not
            arch = get_arch(n, res)
            if arch.space.name != name:
                raise ValueError(f"{n} is an architecture of {arch.space.name}, not of {name}")
    except (ValueError, LutError) as e:
        raise BadInput(f"archs: {e}") from None
    target_id = ensure_target(conn, tid)
    payload = {"space": name, "resolution": res, "archs": body.archs, "seed": body.seed, "rounds": body.rounds,
               "max_time_per_net": body.max_time_per_net, "calibrate": body.calibrate}
    text = dump_json(payload, "payload")
    open_q = select(jobs.c.id, jobs.c.status).where(
        jobs.c.target_id == target_id, jobs.c.kind == "validate", jobs.c.payload == text,
        jobs.c.status.in_(("queued", "claimed")))
    got = conn.execute(open_q).first()
    if got is not None:
        return {"id": int(got[0]), "status": got[1], "created": False, "architectures": len(names), **payload}
    t = now()
    new_id = conn.execute(jobs.insert().values(
        target_id=target_id, op_id=None, kind="validate", status="queued", priority=body.priority, attempts=0,
        max_attempts=max_attempts, payload=text, created_at=t, updated_at=t).returning(jobs.c.id)).scalar_one()
    return {"id": int(new_id), "status": "queued", "created": True, "architectures": len(names), **payload}


def complete(conn: Connection, tid: str, job_id: int) -> bool:
    """Mark the validate job done when its results arrive (whoever holds it, like op jobs)."""
    got = target_row(conn, tid)
    if got is None:
        return False
    res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.target_id == got[0],
                                          jobs.c.kind == "validate", jobs.c.status.in_(("queued", "claimed")))
                       .values(status="done", claimed_by=None, lease_expires_at=None, updated_at=now())
                       .returning(jobs.c.id))
    return res.first() is not None
