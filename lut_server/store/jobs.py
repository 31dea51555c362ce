"""The job queue and its state machine: the only module that writes the ``jobs`` table.

States and the transitions allowed (``TRANSITIONS``)::

    queued  -> claimed (claim) | done (the op got measured) | parked (attempts used up) | cancelled (admin)
    claimed -> queued (release, fail, lease expired) | parked (fail, last attempt) | done | cancelled
    parked  -> queued (admin requeue) | cancelled (admin)

Open states (queued, claimed, parked) are unique per (target, op): a partial unique index
(migration 0004) makes a second open job for the same op impossible, so concurrent registrations
insert with ``ON CONFLICT DO NOTHING`` and count what ``RETURNING`` gives back.

Every transition takes its time ``t`` from the caller (the app's clock, ``lut_server.clock``), so lease
expiry can be tested by moving a clock.

Claiming is one ``UPDATE ... RETURNING`` over the first n queued ids: on PostgreSQL they come
from a CTE with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers pass each other; on SQLite the
whole transaction runs under ``BEGIN IMMEDIATE`` (one writer), so the statement is atomic.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Optional, Set

from sqlalchemy import Connection, func, select, update

from lut_server.schema import JOB_STATES, OPEN_JOB_STATES, OPEN_OP_JOB, OPEN_VALIDATE_JOB, jobs, ops, targets
from lut_server.util import dump_json, insert_returning, iso

TRANSITIONS = {
    "queued": {"claimed", "done", "parked", "cancelled"},
    "claimed": {"queued", "parked", "done", "cancelled"},
    "parked": {"queued", "cancelled"},
    "done": set(),
    "cancelled": set(),
}


class JobConflict(Exception):
    """The job exists but is not in a state (or not held by the caller) that allows this (409)."""


class JobNotFound(Exception):
    """No job with that id (404)."""


def _from(*to: str) -> List[str]:
    """The states from which every one of ``to`` may be reached."""
    return [s for s in JOB_STATES if all(t in TRANSITIONS[s] for t in to)]


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


def enqueue_ops(conn: Connection, target_id: int, op_ids: Iterable[int], priority: int, max_attempts: int,
                payload: Dict[str, Any], t: float) -> int:
    """Queue a job for each op without an open one; returns how many were created (by RETURNING)."""
    text = dump_json(payload)
    rows = [{"target_id": target_id, "op_id": op_id, "kind": "op", "status": "queued", "priority": priority,
             "attempts": 0, "max_attempts": max_attempts, "payload": text, "created_at": t, "updated_at": t}
            for op_id in sorted(set(op_ids))]
    return len(insert_returning(conn, jobs, rows, ["target_id", "op_id"], jobs.c.id,
                                where=OPEN_OP_JOB))


def enqueue_validate(conn: Connection, target_id: int, payload_text: str, priority: int,
                     max_attempts: int, t: float) -> Dict[str, Any]:
    """Queue a validate job unless the same request is open (queued or claimed): a partial unique
    index on (target, payload digest) makes that hold under concurrent requests too.
    Returns {id, status, created}."""
    dedupe = hashlib.sha256(payload_text.encode("utf-8")).hexdigest()
    got = insert_returning(conn, jobs, [{
        "target_id": target_id, "op_id": None, "kind": "validate", "status": "queued", "priority": priority,
        "attempts": 0, "max_attempts": max_attempts, "payload": payload_text, "dedupe": dedupe, "created_at": t,
        "updated_at": t}], ["target_id", "dedupe"], jobs.c.id, where=OPEN_VALIDATE_JOB)
    if got:
        return {"id": int(got[0]), "status": "queued", "created": True}
    r = conn.execute(select(jobs.c.id, jobs.c.status).where(
        jobs.c.target_id == target_id, jobs.c.dedupe == dedupe, jobs.c.kind == "validate",
        jobs.c.status.in_(("queued", "claimed")))).one()
    return {"id": int(r[0]), "status": r[1], "created": False}


def claim(conn: Connection, target_id: int, tid: str, actor: str, n: int, lease_s: float,
          t: float) -> List[Dict[str, Any]]:
    """Up to ``n`` queued jobs of the target, leased to ``actor`` until t + lease_s; leases expired by
    ``t`` go back to the queue first."""
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


def heartbeat(conn: Connection, job_ids: List[int], actor: str, lease_s: float, t: float) -> Dict[str, List[int]]:
    """Extend the leases the actor still holds to t + lease_s; the others (not held by the actor) are
    reported lost. A lease past its expiry that nobody reclaimed yet is still held."""
    ids = sorted(set(job_ids))
    extended: List[int] = []
    for i in range(0, len(ids), 900):
        res = conn.execute(update(jobs).where(jobs.c.id.in_(ids[i : i + 900]), jobs.c.status == "claimed",
                                              jobs.c.claimed_by == actor)
                           .values(lease_expires_at=t + lease_s, updated_at=t).returning(jobs.c.id))
        extended.extend(int(r[0]) for r in res)
    ext = set(extended)
    return {"extended": sorted(ext), "lost": [j for j in ids if j not in ext]}


def get(conn: Connection, job_id: int, lock: bool = False) -> Dict[str, Any]:
    q = select(jobs).where(jobs.c.id == job_id)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    if row is None:
        raise JobNotFound(f"no job {job_id}")
    return dict(row)


def _held(conn: Connection, job_id: int, actor: str) -> Dict[str, Any]:
    row = get(conn, job_id, lock=True)
    if row["status"] != "claimed" or row["claimed_by"] != actor:
        holder = f"held by {row['claimed_by']}" if row["status"] == "claimed" else row["status"]
        raise JobConflict(f"job {job_id} is not held by {actor} (it is {holder})")
    return row


def _state(row: Dict[str, Any], **over: Any) -> Dict[str, Any]:
    out = {k: row[k] for k in ("id", "status", "attempts", "max_attempts", "last_error")}
    out.update(over)
    return out


def fail(conn: Connection, job_id: int, actor: str, error: str, t: float) -> Dict[str, Any]:
    """Count a failed attempt; back to the queue, or parked with the error after max_attempts."""
    row = _held(conn, job_id, actor)
    attempts = row["attempts"] + 1
    status = "parked" if attempts >= row["max_attempts"] else "queued"
    err = error.replace("\x00", "")[:4000] or "failed (no error given)"
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        status=status, attempts=attempts, last_error=err, claimed_by=None, lease_expires_at=None, updated_at=t))
    return _state(row, status=status, attempts=attempts, last_error=err)


def release(conn: Connection, job_id: int, actor: str, t: float) -> Dict[str, Any]:
    """Give a job back without counting an attempt (e.g. the agent is shutting down)."""
    row = _held(conn, job_id, actor)
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        status="queued", claimed_by=None, lease_expires_at=None, updated_at=t))
    return _state(row, status="queued")


def check_completable(conn: Connection, target_id: int, job_ids: Iterable[int], actor: str) -> None:
    """JobConflict if one of these jobs of the target is held by someone else than ``actor``."""
    ids = sorted(set(job_ids))
    for i in range(0, len(ids), 900):
        q = select(jobs.c.id, jobs.c.claimed_by).where(
            jobs.c.id.in_(ids[i : i + 900]), jobs.c.target_id == target_id, jobs.c.status == "claimed",
            jobs.c.claimed_by != actor)
        r = conn.execute(q).first()
        if r is not None:
            raise JobConflict(f"job {r[0]} is held by {r[1]}, not {actor}; only its holder completes it")


def complete_ops(conn: Connection, target_id: int, op_ids: Iterable[int], actor: str, t: float) -> int:
    """The ops got measured: their queued jobs and the ones ``actor`` holds are done. A job claimed by
    another board stays with its holder (its measurement will be one more run)."""
    ids = sorted(set(op_ids))
    n = 0
    for i in range(0, len(ids), 900):
        held_by_other = (jobs.c.status == "claimed") & (jobs.c.claimed_by != actor)
        res = conn.execute(update(jobs).where(
            jobs.c.target_id == target_id, jobs.c.op_id.in_(ids[i : i + 900]), jobs.c.status.in_(_from("done")),
            ~held_by_other).values(status="done", claimed_by=None, lease_expires_at=None, updated_at=t)
            .returning(jobs.c.id))
        n += len(res.all())
    return n


def complete_validate(conn: Connection, target_id: int, job_id: int, actor: str, t: float) -> bool:
    """Mark a validate job done when its results arrive from its holder (or while nobody holds it)."""
    check_completable(conn, target_id, [job_id], actor)
    res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.target_id == target_id,
                                          jobs.c.kind == "validate", jobs.c.status.in_(_from("done")))
                       .values(status="done", claimed_by=None, lease_expires_at=None, updated_at=t)
                       .returning(jobs.c.id))
    return res.first() is not None


def requeue_parked(conn: Connection, t: float, target_id: Optional[int] = None,
                   job_ids: Optional[List[int]] = None) -> List[int]:
    """Admin: parked jobs back to the queue with their attempts reset."""
    cond = [jobs.c.status == "parked"]
    if target_id is not None:
        cond.append(jobs.c.target_id == target_id)
    if job_ids is not None:
        cond.append(jobs.c.id.in_(sorted(set(job_ids))))
    res = conn.execute(update(jobs).where(*cond).values(status="queued", attempts=0, claimed_by=None,
                                                        lease_expires_at=None, updated_at=t)
                       .returning(jobs.c.id))
    return sorted(int(r[0]) for r in res)


def cancel(conn: Connection, job_id: int, t: float) -> Dict[str, Any]:
    """Admin: an open job is cancelled (a later registration may queue the op again)."""
    row = get(conn, job_id, lock=True)
    if "cancelled" not in TRANSITIONS[row["status"]]:
        raise JobConflict(f"job {job_id} is {row['status']}; only queued, claimed or parked jobs can be cancelled")
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        status="cancelled", claimed_by=None, lease_expires_at=None, updated_at=t))
    return _state(row, status="cancelled")


def delete_for_target(conn: Connection, target_id: int) -> int:
    return conn.execute(jobs.delete().where(jobs.c.target_id == target_id)).rowcount or 0


def open_op_ids(conn: Connection, target_id: int, op_ids: List[int]) -> Set[int]:
    out: Set[int] = set()
    for i in range(0, len(op_ids), 900):
        q = select(jobs.c.op_id).where(jobs.c.target_id == target_id, jobs.c.op_id.in_(op_ids[i : i + 900]),
                                       jobs.c.status.in_(OPEN_JOB_STATES))
        out.update(int(r[0]) for r in conn.execute(q))
    return out


def queue_depth(conn: Connection) -> Dict[str, Dict[str, int]]:
    """Job counts by state, per target id."""
    out: Dict[str, Dict[str, int]] = {}
    q = (select(targets.c.tid, jobs.c.status, func.count()).join(targets, targets.c.id == jobs.c.target_id)
         .group_by(targets.c.tid, jobs.c.status))
    for tid, status, n in conn.execute(q):
        out.setdefault(tid, {s: 0 for s in JOB_STATES})[status] = int(n)
    return out


def parked(conn: Connection, limit: int = 200) -> List[Dict[str, Any]]:
    q = (select(jobs.c.id, targets.c.tid, ops.c.key, jobs.c.attempts, jobs.c.last_error, jobs.c.updated_at)
         .join(targets, targets.c.id == jobs.c.target_id).outerjoin(ops, ops.c.id == jobs.c.op_id)
         .where(jobs.c.status == "parked").order_by(jobs.c.id).limit(limit))
    return [{"id": r[0], "target": r[1], "key": r[2], "attempts": r[3], "error": r[4], "parked_at": iso(r[5])}
            for r in conn.execute(q)]
