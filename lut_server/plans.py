"""Measurement planned by the predictor (issue 20): `lut register SPACE --target T --budget N`.

Instead of every op the LUT lacks, a plan enqueues a batch: the ops whose uncertainty weighs most in
the space (``predictor.planner``: weight x predicted ms x fold disagreement, a quarter drawn at random
so the intervals stay honest for the light ops). When no op of the batch is queued or claimed any
more (the last measurement of the batch arrived, in the ingest transaction), the plan refits the
target's predictor and enqueues the next, until every unmeasured cell's 90% interval is within
``bound`` (relative width (hi - lo) / value), the budget is spent, or the space is measured.

State lives in the database (``store.plans``), the plan row is locked while it advances, so any
number of server processes advance it once per batch. The fit (~0.5 s for a few hundred ops,
bounded by ``predicted.MAX_FIT_ENTRIES``) runs inside that write transaction: once per batch, not
per measurement.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from sqlalchemy import Connection

from lut_server import predicted, spaces
from lut_server.predictor import PredictorError
from lut_server.store import jobs
from lut_server.store import plans as stored
from lut_server.store.entries import measured_op_ids
from lut_server.store.registry import ensure_ops, target_row
from lut_server.util import BadInput, now
from lutcore.ops import OpSpec
from lutcore.spaces import Space

if TYPE_CHECKING:  # the planner (numpy, the model) is imported by the first plan that advances
    from lut_server.predictor import Predictor

DEFAULT_BOUND = 0.3  # a 90% interval of at most 30% of the value (about +-15%)
MIN_BATCH, MAX_BATCH = 8, 64  # a batch is a fifth of the budget within these: few refits, still adaptive


def budget_of(budget: Optional[int], share: Optional[float], n_ops: int) -> int:
    """Ops the plan may spend: ``budget`` as given, or ``share`` of the space's unique ops (at least 1)."""
    if (budget is None) == (share is None):
        raise BadInput("give the plan's budget once: as a number of ops or as a share of the space's ops")
    if (budget is not None and budget < 1) or (share is not None and not 0.0 < share <= 1.0):
        raise BadInput(f"budget {budget if budget is not None else share}: a number of ops >= 1 or a share in (0, 1]")
    return int(budget) if budget is not None else max(1, math.ceil(float(share) * n_ops))  # type: ignore[arg-type]


def register(conn: Connection, space: Any, resolution: Optional[str], tid: str, priority: int, max_attempts: int,
             budget: Optional[int], share: Optional[float], bound: Optional[float],
             resolved: Optional[spaces.AnySpace] = None) -> Dict[str, Any]:
    """``spaces.register``; with a budget the plan enqueues (its first batch), not the registration."""
    planned = budget is not None or share is not None
    if bound is not None and not planned:
        raise BadInput("the interval bound bounds a measurement plan: give a budget too")
    if not planned:
        return spaces.register(conn, space, resolution, tid, priority, max_attempts, resolved=resolved)
    sp = resolved or spaces.resolve(conn, space, resolution)
    if not isinstance(sp, Space):
        raise BadInput(f"space {sp.name} is a cell space: a measurement plan (--budget) weighs the ops of a chain "
                       "space's layers; register it without a budget")
    out = spaces.register(conn, space, resolution, tid, priority, max_attempts, resolved=sp, enqueue=False)
    out.update(start(conn, tid, sp, budget, share, bound, priority, max_attempts, now()))
    return out


def start(conn: Connection, tid: str, sp: Space, budget: Optional[int], share: Optional[float],
          bound: Optional[float], priority: int, max_attempts: int, t: float) -> Dict[str, Any]:
    """Create (or re-budget) the plan of ``sp`` on the registered target ``tid`` and enqueue its first
    batch unless one is in flight: {"enqueued": n, "plan": view}."""
    if bound is not None and not 0.0 < bound <= 100.0:
        raise BadInput(f"interval bound {bound}: a relative width in (0, 100], e.g. 0.3")
    got = target_row(conn, tid)
    if got is None:
        raise BadInput(f"target {tid} is not registered")
    n = budget_of(budget, share, len(_candidates(sp)))
    size = min(MAX_BATCH, max(MIN_BATCH, math.ceil(n / 5)))
    plan_id = stored.save(conn, got[0], sp.name, sp.resolution_str, n, DEFAULT_BOUND if bound is None else bound,
                          size, priority, t)
    plan = stored.lock(conn, plan_id)
    enqueued = advance(conn, plan, sp, max_attempts, t) if stored.in_flight(conn, plan) == 0 else 0
    return {"enqueued": enqueued, "plan": view(stored.lock(conn, plan_id))}


def after_measurements(conn: Connection, target_id: int, max_attempts: int, t: float) -> None:
    """In the transaction that stored measurements and completed jobs: advance each of the target's
    measuring plans whose batch has no queued or claimed job left."""
    for plan_id in stored.measuring(conn, target_id):
        plan = stored.lock(conn, plan_id)
        if plan["state"] != "measuring" or stored.in_flight(conn, plan):
            continue
        try:
            sp = spaces.chain(spaces.resolve(conn, plan["space"], plan["resolution"]))
        except BadInput:  # the space name was deleted (or now names a cell space): nothing left to plan for
            stored.set_state(conn, plan_id, state="dropped", updated_at=t)
            continue
        advance(conn, plan, sp, max_attempts, t)


def advance(conn: Connection, plan: Dict[str, Any], sp: Space, max_attempts: int, t: float) -> int:
    """Refit, record the widest interval and stop, or enqueue the next batch; how many jobs it queued.
    The caller holds the plan's row lock."""
    unique = _candidates(sp)
    measured = measured_op_ids(conn, plan["target_id"], list(unique))
    todo = [s for k, s in unique.items() if k not in measured]
    from lut_server.predictor import planner

    p = _fit(conn, plan)
    worst = planner.widest_interval(p, todo)
    left = plan["budget"] - plan["spent"]
    values: Dict[str, Any] = {"worst": worst, "updated_at": t}
    enqueued = 0
    if not todo:
        values["state"] = "complete"
    elif worst is not None and worst <= plan["bound"]:
        values["state"] = "met"
    elif left <= 0:
        values["state"] = "spent"
    else:
        ids = ensure_ops(conn, todo)
        busy = stored.chosen(conn, plan["id"]) | jobs.open_op_ids(conn, plan["target_id"], sorted(ids.values()))
        free = [s for s in todo if ids[s.key] not in busy]
        pick = planner.next_batch(p, free, planner.space_weights(sp), plan["batch"], left,
                                  (int(plan["id"]), int(plan["batches"])))
        if pick:
            op_ids = [ids[s.key] for s in pick]
            enqueued = jobs.enqueue_ops(conn, plan["target_id"], op_ids, plan["priority"], max_attempts,
                                        {"space": sp.name, "resolution": sp.resolution_str, "plan": plan["id"]}, t)
            stored.add_ops(conn, plan["id"], op_ids, plan["batches"] + 1)
            values.update(spent=plan["spent"] + len(pick), batches=plan["batches"] + 1)
    stored.set_state(conn, plan["id"], **values)
    return enqueued


def _candidates(sp: Space) -> Dict[str, OpSpec]:
    """The ops a plan may measure: the space's unique ops (fixed ones included) but identities (0 ms)."""
    return {k: s for k, s in sp.unique_ops().items() if not s.is_identity}


def _fit(conn: Connection, plan: Dict[str, Any]) -> Optional[Predictor]:
    try:
        return predicted.fit_target(conn, plan["tid"], plan["target_id"], "median_ms")
    except PredictorError:
        return None  # too few measured entries yet: the opening batch comes first


def view(plan: Dict[str, Any]) -> Dict[str, Any]:
    """A plan as status and registration show it."""
    return {"space": plan["space"], "resolution": plan["resolution"], "target": plan["tid"], "state": plan["state"],
            "budget": plan["budget"], "spent": plan["spent"], "batches": plan["batches"], "bound": plan["bound"],
            "worst_interval": plan["worst"]}


def overview(conn: Connection) -> List[Dict[str, Any]]:
    return [view(p) for p in stored.overview(conn)]
