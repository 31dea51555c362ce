"""What `lut status` and GET /status show: targets, coverage per registered space, queue, parked jobs, and
how well the LUT predicts whole networks per (space, target) (validations, calibrated when fitted), and the
progress of measurement plans."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from sqlalchemy import Connection

from lut_server import plans, spaces, validations
from lut_server.schema import JOB_STATES
from lut_server.store import entries, jobs, registry
from lut_server.util import BadInput


def targets_view(conn: Connection) -> List[Dict[str, Any]]:
    counts = entries.counts_by_target(conn)
    return [{"id": r["tid"], "target": json.loads(r["spec"]), "lut_version": r["lut_version"],
             "ops_measured": counts.get(r["id"], 0)} for r in registry.all_targets(conn)]


def status(conn: Connection) -> Dict[str, Any]:
    cov = []
    for row in spaces.registered(conn):
        try:
            cov.append(spaces.coverage(conn, row))
        except BadInput as e:
            cov.append({"space": row["name"], "resolution": row["resolution"], "target": row["tid"],
                        "error": str(e)})
    depth = jobs.queue_depth(conn)
    total = {s: sum(d[s] for d in depth.values()) for s in JOB_STATES}
    return {"targets": targets_view(conn), "spaces": cov, "queue": total, "queue_by_target": depth,
            "parked": jobs.parked(conn), "validations": validations.overview(conn), "plans": plans.overview(conn)}
