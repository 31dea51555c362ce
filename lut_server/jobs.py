"""The job queue: atomic claims under a lease, heartbeats, failures, parking.

Claiming is one ``UPDATE ... RETURNING`` over the first n queued ids: on PostgreSQL they come
from a CTE with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers pass each other; on SQLite the
whole transaction runs under ``BEGIN IMMEDIATE`` (one writer), so the statement is atomic.
A lease that expires sends its job back to the queue and counts as a failed attempt
("lease expired"); after ``max_attempts`` failures a job is parked with its last error.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, select, update

from lut_server.registry import target_row
from lut_server.schema import jobs, ops, targets
from lut_server.util import clean_text, iso, now


class JobConflict(Exception):
    """The job exists but the caller does not hold it (409)."""


class JobNotFound(Exception):
    """No job with that id (404)."""


def _requeue_expired(conn: Connection, target_id: Optional[int], t: float) -> None:
    cond = [jobs.c.status == "claimed", jobs.c.lease_expires_at < t]
    if target_id is not None:
        cond.append(jobs.c.target_id == target_id)
    conn.execute(update(jobs).where(*cond).values(
        status="queued", attempts=jobs.c.attempts + 1, claimed_by=None, lease_expires_at=None,
        last_error="lease expired before the job was completed", updated_at=t))
    cond2 = [jobs.c.status == "queued", jobs.c.attempts >= jobs.c.max_attempts]
    if target_id is not None:
        cond2.append(jobs.c.target_id == target_id)
    conn.execute(update(jobs).where(*cond2).values(status="parked", updated_at=t))


def claim(conn: Connection, tid: str, actor: str, n: int, lease_s: float) -> List[Dict[str, Any]]:
    """Up to ``n`` queued jobs of the target, now leased to ``actor`` until now + lease_s."""
    got = target_row(conn, tid)
    if got is None:
        return []
    target_id = got[0]
    t = now()
    _requeue_expired(conn, target_id, t)
    sub = (select(jobs.c.id).where(jobs.c.target_id == target_id, jobs.c.status == "queued")
           .order_by(jobs.c.priority.desc(), jobs.c.id).limit(n))
    if conn.dialect.name == "postgresql":
        # A CTE runs once; a plain IN (subquery) may be re-scanned per row and pick more than n.
        picked = sub.with_for_update(skip_locked=True).cte("picked")
        where = [jobs.c.id == picked.c.id]
    else:
        where = [jobs.c.id.in_(sub.scalar_subquery())]
    stmt = (update(jobs).where(*where, jobs.c.status == "queued")
            .values(status="claimed", claimed_by=actor, lease_expires_at=t + lease_s, updated_at=t)
            .returning(jobs.c.id, jobs.c.op_id, jobs.c.kind, jobs.c.attempts, jobs.c.priority,
                       jobs.c.lease_expires_at, jobs.c.payload))
    claimed = [dict(r) for r in conn.execute(stmt).mappings()]
    if not claimed:
        return []
    op_rows = {int(r[0]): {"key": r[1], "spec": json.loads(r[2])} for r in conn.execute(
        select(ops.c.id, ops.c.key, ops.c.spec).where(ops.c.id.in_([c["op_id"] for c in claimed if c["op_id"]])))}
    claimed.sort(key=lambda c: (-c["priority"], c["id"]))
    return [{"id": c["id"], "target": tid, "op": op_rows.get(c["op_id"]) if c["op_id"] else None,
             "kind": c["kind"], "lease_expires_at": iso(c["lease_expires_at"]), "attempts": c["attempts"],
             "payload": json.loads(c["payload"] or "{}")} for c in claimed]


def heartbeat(conn: Connection, job_ids: List[int], actor: str, lease_s: float) -> Dict[str, List[int]]:
    """Extend the leases the actor still holds; the others are reported lost."""
    t = now()
    ids = sorted(set(job_ids))
    extended: List[int] = []
    for i in range(0, len(ids), 900):
        res = conn.execute(update(jobs).where(jobs.c.id.in_(ids[i : i + 900]), jobs.c.status == "claimed",
                                              jobs.c.claimed_by == actor)
                           .values(lease_expires_at=t + lease_s, updated_at=t).returning(jobs.c.id))
        extended.extend(int(r[0]) for r in res)
    ext = set(extended)
    return {"extended": sorted(ext), "lost": [j for j in ids if j not in ext]}


def _held(conn: Connection, job_id: int, actor: str) -> Dict[str, Any]:
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise JobNotFound(f"no job {job_id}")
    if row["status"] != "claimed" or row["claimed_by"] != actor:
        holder = f"held by {row['claimed_by']}" if row["status"] == "claimed" else row["status"]
        raise JobConflict(f"job {job_id} is not held by {actor} (it is {holder})")
    return dict(row)


def fail(conn: Connection, job_id: int, actor: str, error: str) -> Dict[str, Any]:
    """Count a failed attempt; back to the queue, or parked with the error after max_attempts."""
    row = _held(conn, job_id, actor)
    attempts = row["attempts"] + 1
    status = "parked" if attempts >= row["max_attempts"] else "queued"
    err = clean_text(error.replace("\x00", ""), "error", 4000) or "failed (no error given)"
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        status=status, attempts=attempts, last_error=err, claimed_by=None, lease_expires_at=None, updated_at=now()))
    return {"id": job_id, "status": status, "attempts": attempts, "max_attempts": row["max_attempts"],
            "last_error": err}


def release(conn: Connection, job_id: int, actor: str) -> Dict[str, Any]:
    """Give a job back without counting an attempt (e.g. the agent is shutting down)."""
    row = _held(conn, job_id, actor)
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        status="queued", claimed_by=None, lease_expires_at=None, updated_at=now()))
    return {"id": job_id, "status": "queued", "attempts": row["attempts"], "max_attempts": row["max_attempts"],
            "last_error": row["last_error"]}


def queue_depth(conn: Connection) -> Dict[str, Dict[str, int]]:
    """Job counts by state, per target id."""
    from sqlalchemy import func

    out: Dict[str, Dict[str, int]] = {}
    q = (select(targets.c.tid, jobs.c.status, func.count()).join(targets, targets.c.id == jobs.c.target_id)
         .group_by(targets.c.tid, jobs.c.status))
    for tid, status, n in conn.execute(q):
        out.setdefault(tid, {s: 0 for s in ("queued", "claimed", "done", "parked")})[status] = int(n)
    return out


def parked(conn: Connection, limit: int = 200) -> List[Dict[str, Any]]:
    q = (select(jobs.c.id, targets.c.tid, ops.c.key, jobs.c.attempts, jobs.c.last_error, jobs.c.updated_at)
         .join(targets, targets.c.id == jobs.c.target_id).outerjoin(ops, ops.c.id == jobs.c.op_id)
         .where(jobs.c.status == "parked").order_by(jobs.c.id).limit(limit))
    return [{"id": r[0], "target": r[1], "key": r[2], "attempts": r[3], "error": r[4], "parked_at": iso(r[5])}
            for r in conn.execute(q)]


__all__ = ["JobConflict", "JobNotFound", "claim", "fail", "heartbeat", "parked", "queue_depth", "release"]
