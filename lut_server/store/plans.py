"""Measurement plans and the ops they chose: the only module that writes ``measure_plans`` and ``plan_ops``."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Set

from sqlalchemy import Connection, func, select, update

from lut_server.schema import jobs, measure_plans, plan_ops, targets
from lut_server.util import insert_ignore

IN_FLIGHT = ("queued", "claimed")  # a parked job does not hold a plan back: it is spent, and skipped


def save(conn: Connection, target_id: int, space: str, resolution: str, budget: int, bound: float, batch: int,
         priority: int, t: float) -> int:
    """Create the plan, or give an existing one a new budget (never below what it spent) and bound and
    set it measuring again; its id."""
    key = (measure_plans.c.target_id == target_id, measure_plans.c.space == space,
           measure_plans.c.resolution == resolution)
    insert_ignore(conn, measure_plans, [{
        "target_id": target_id, "space": space, "resolution": resolution, "budget": budget, "spent": 0,
        "bound": bound, "batch": batch, "priority": priority, "state": "measuring", "worst": None, "batches": 0,
        "created_at": t, "updated_at": t}], ["target_id", "space", "resolution"])
    conn.execute(update(measure_plans).where(*key).values(
        budget=func.max(measure_plans.c.spent, budget) if conn.dialect.name == "sqlite"
        else func.greatest(measure_plans.c.spent, budget),
        bound=bound, batch=batch, priority=priority, state="measuring", updated_at=t))
    return int(conn.execute(select(measure_plans.c.id).where(*key)).scalar_one())


def lock(conn: Connection, plan_id: int) -> Dict[str, Any]:
    """The plan's row, locked until the transaction ends (PostgreSQL; SQLite has one writer): two
    processes that complete a plan's last two jobs at once advance it once, one after the other."""
    q = select(measure_plans, targets.c.tid).join(targets, targets.c.id == measure_plans.c.target_id).where(
        measure_plans.c.id == plan_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=measure_plans)
    return dict(conn.execute(q).mappings().one())


def measuring(conn: Connection, target_id: int) -> List[int]:
    q = select(measure_plans.c.id).where(measure_plans.c.target_id == target_id,
                                         measure_plans.c.state == "measuring").order_by(measure_plans.c.id)
    return [int(r[0]) for r in conn.execute(q)]


def in_flight(conn: Connection, plan: Dict[str, Any]) -> int:
    """How many of the ops the plan chose have a queued or claimed job."""
    q = (select(func.count()).select_from(plan_ops)
         .join(jobs, (jobs.c.op_id == plan_ops.c.op_id) & (jobs.c.target_id == plan["target_id"]))
         .where(plan_ops.c.plan_id == plan["id"], jobs.c.status.in_(IN_FLIGHT)))
    return int(conn.execute(q).scalar_one())


def chosen(conn: Connection, plan_id: int) -> Set[int]:
    return {int(r[0]) for r in conn.execute(select(plan_ops.c.op_id).where(plan_ops.c.plan_id == plan_id))}


def add_ops(conn: Connection, plan_id: int, op_ids: Iterable[int], batch: int) -> None:
    insert_ignore(conn, plan_ops, [{"plan_id": plan_id, "op_id": i, "batch": batch} for i in sorted(set(op_ids))],
                  ["plan_id", "op_id"])


def set_state(conn: Connection, plan_id: int, **values: Any) -> None:
    conn.execute(update(measure_plans).where(measure_plans.c.id == plan_id).values(**values))


def overview(conn: Connection) -> List[Dict[str, Any]]:
    """Every plan with its target id, for status."""
    q = (select(measure_plans, targets.c.tid).join(targets, targets.c.id == measure_plans.c.target_id)
         .order_by(targets.c.tid, measure_plans.c.space, measure_plans.c.resolution))
    return [dict(r) for r in conn.execute(q).mappings()]

