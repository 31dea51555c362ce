"""What the live dashboard (``/``) shows, one small answer per panel so the page can poll each cheaply.

Panels: coverage and queue with an ETA, agents, parked jobs, LUT truth (validations against the LUT,
the calibration and its staleness), C(i,j) heatmaps, and the fleet view (boards of one device class
side by side, and where a board disagrees with its peers). No FastAPI, no SQL (store/activity.py).
"""

from __future__ import annotations

import json
import statistics
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection

from lut_server import spaces, validations
from lut_server.report_cells import type_matrices
from lut_server.schema import JOB_STATES
from lut_server.store import activity, jobs
from lut_server.store import validations as stored_validations
from lut_server.util import BadInput, iso, now
from lutcore.errors import LutError
from lutcore.spaces.cells.space import CellSpace

RATE_WINDOW_S = 600.0  # the ETA divides the open jobs by the jobs done in this last window
ONLINE_S = 120.0  # an agent heard from (claim, heartbeat, measurement) this recently is online
FLEET_TOL = 0.10  # a board whose median is this far from its peers' on an op disagrees on it
HIST_EDGES = [x / 100 for x in range(-20, 21, 2)]  # error histogram: 2% bins over +-20%, plus two overflow bins
MAX_POINTS = 2000  # truth points per (space, target)
MAX_DISAGREEMENTS = 50  # per device class, largest first


def overview(conn: Connection) -> Dict[str, Any]:
    """Coverage per registered (space, resolution, target), the queue per target with an ETA, totals."""
    cov = []
    for row in spaces.registered(conn):
        try:
            cov.append({**spaces.coverage(conn, row), "identities": _identities(conn, row), "error": None})
        except (BadInput, LutError) as e:
            cov.append({"space": row["name"], "resolution": row["resolution"], "target": row["tid"],
                        "measured": 0, "total": 0, "fraction": 0.0, "identities": 0, "error": str(e)})
    depth = jobs.queue_depth(conn)
    t = now()
    done = activity.done_since(conn, t - RATE_WINDOW_S)
    queue: List[Dict[str, Any]] = []
    for tid in sorted(depth):
        d = depth[tid]
        open_jobs = d["queued"] + d["claimed"]
        rate = done.get(tid, 0) / RATE_WINDOW_S
        eta = 0.0 if not open_jobs else round(open_jobs / rate, 1) if rate > 0 else None
        queue.append({"target": tid, **{s: d[s] for s in JOB_STATES}, "done_per_min": round(rate * 60, 2),
                      "eta_s": eta})
    posts = activity.last_posts(conn)
    totals = {s: sum(q[s] for q in queue) for s in JOB_STATES}
    return {"coverage": cov, "queue": queue, "totals": totals,
            "measurements": sum(n for _, n in posts.values()), "generated_at": iso(t)}


def _identities(conn: Connection, row: Dict[str, Any]) -> int:
    """Identity (skip) keys in a coverage total: they cost 0 and count as measured, which is why a
    coverage total exceeds the unique-op count that `lut register` and `lut space show` give."""
    sp = _space_of(conn, row)
    return 0 if isinstance(sp, CellSpace) else len(spaces.identity_keys(sp))


def _space_of(conn: Connection, row: Dict[str, Any]) -> Any:
    definition: Any = json.loads(row["definition"]) if row["definition"] else row["name"]
    return spaces.resolve(conn, definition, row["resolution"])


def agents(conn: Connection) -> List[Dict[str, Any]]:
    """Every board with its last sign of life, fingerprint and the jobs it holds. A holder that is no
    registered board (an admin's token claiming) is listed too."""
    t = now()
    posts = activity.last_posts(conn)
    held = activity.held_jobs(conn)
    rows = {b["name"]: b for b in activity.boards(conn)}
    out = []
    for name in sorted(set(rows) | set(held)):
        b = rows.get(name, {})
        mine = held.get(name, [])
        last_post = posts.get(name, (None, 0))[0]
        heartbeat = max((j["touched"] for j in mine), default=None)
        seen = [x for x in (b.get("updated_at"), last_post, heartbeat) if x is not None]
        last_seen = max(seen) if seen else None
        live_lease = any((j["lease_expires_at"] or 0) > t for j in mine)
        fp = b.get("fingerprint")
        out.append({
            "name": name, "device_class": b.get("device_class"), "fingerprint_digest": b.get("fingerprint_digest"),
            "fingerprint": json.loads(fp) if fp else None, "last_heartbeat": iso(heartbeat),
            "last_post": iso(last_post), "last_seen": iso(last_seen),
            "seconds_since_seen": None if last_seen is None else round(t - last_seen, 1),
            "online": live_lease or (last_seen is not None and t - last_seen <= ONLINE_S),
            "measurements": posts.get(name, (None, 0))[1],
            "jobs": [{"id": j["id"], "kind": j["kind"], "target": j["target"], "key": j["key"],
                      "lease_expires_at": iso(j["lease_expires_at"])} for j in mine[:20]],
            "jobs_held": len(mine)})
    return out


def histogram(errors: List[float]) -> List[Dict[str, Any]]:
    """Counts of relative errors in HIST_EDGES bins; the first and last bins take everything beyond."""
    bins: List[Dict[str, Any]] = [{"lo": None, "hi": HIST_EDGES[0], "n": 0}]
    bins += [{"lo": lo, "hi": hi, "n": 0} for lo, hi in zip(HIST_EDGES, HIST_EDGES[1:])]
    bins.append({"lo": HIST_EDGES[-1], "hi": None, "n": 0})
    for e in errors:
        i = 0 if e < HIST_EDGES[0] else len(bins) - 1 if e >= HIST_EDGES[-1] else 1 + int(
            (e - HIST_EDGES[0]) // (HIST_EDGES[1] - HIST_EDGES[0]))
        bins[min(i, len(bins) - 1)]["n"] += 1
    return bins


def truth(conn: Connection) -> List[Dict[str, Any]]:
    """Per (space, resolution, target) with validations: each architecture's latest predicted and measured
    latency, the error histogram, the summary raw and calibrated, and the calibration in use (stale or not)."""
    out: List[Dict[str, Any]] = []
    for space, res, tid in stored_validations.triples(conn):
        try:
            rep = validations.report(conn, tid, space, res)
            costs = spaces.cell_costs if isinstance(spaces.resolve(conn, space, res), CellSpace) else spaces.cost_matrix
            cal = costs(conn, space, res, tid)["calibration"] if rep["calibration"] else None
        except (BadInput, LutError) as e:
            out.append({"space": space, "resolution": res, "target": tid, "error": str(e)})
            continue
        last = validations.latest(rep["results"])
        out.append({"space": space, "resolution": res, "target": tid, "error": None,
                    "points": [{"arch": r["arch"], "kind": r["kind"], "predicted_ms": r["predicted_ms"],
                                "measured_ms": r["measured_ms"], "error": r["error"]} for r in last[:MAX_POINTS]],
                    "histogram": histogram([r["error"] for r in last]), "summary": rep["summary"],
                    "calibrated_summary": rep["calibrated_summary"], "calibration": cal})
    return out


def heatmaps(conn: Connection) -> List[Dict[str, Any]]:
    """C(i,j) per registered (space, resolution, target): the cost matrix the search reads (None = not
    measured yet; ``mask`` true = not a candidate of that layer). Cell spaces have no such matrix: cell_heatmaps."""
    out = []
    for row in spaces.registered(conn):
        try:
            sp = _space_of(conn, row)
            if isinstance(sp, CellSpace):
                continue
            cm = spaces.cost_matrix(conn, sp, row["resolution"], row["tid"])
        except (BadInput, LutError):
            continue
        out.append({k: cm[k] for k in ("space", "resolution", "target", "lut_version", "candidates", "matrix",
                                        "mask", "coverage")})
    return out


def cell_heatmaps(conn: Connection, space: Optional[str] = None, target: Optional[str] = None) -> List[Dict[str, Any]]:
    """Per registered cell space and target (``space``/``target`` narrow them): one [edges x ops] heatmap
    per cell type, C(edge, op) summed over the type's cells as the report draws it (report_cells), None
    where a cell of that type lacks the entry. BadInput when the filters match no registered cell space."""
    out: List[Dict[str, Any]] = []
    for row in spaces.registered(conn):
        if (space is not None and row["name"] != space) or (target is not None and row["tid"] != target):
            continue
        head = {"space": row["name"], "resolution": row["resolution"], "target": row["tid"]}
        try:
            sp = _space_of(conn, row)
            if not isinstance(sp, CellSpace):
                continue
            cc = spaces.cell_costs(conn, sp, row["resolution"], row["tid"])
        except (BadInput, LutError) as e:
            out.append({**head, "error": str(e)})
            continue
        maps = type_matrices(cc)
        out.append({**head, "error": None, "lut_version": cc["lut_version"], "coverage": cc["coverage"],
                    "ops": maps[0]["candidates"], "edges": maps[0]["row_labels"],
                    "types": [{"cell_type": t["cell_type"], "cells": t["cells"], "matrix": t["matrix"],
                               "missing": sum(v is None for r in t["matrix"] for v in r)} for t in maps]})
    if (space is not None or target is not None) and not out:
        asked = " and ".join(f"{k}={v!r}" for k, v in (("space", space), ("target", target)) if v is not None)
        raise BadInput(f"no registered cell space matches {asked}; register one with POST /spaces "
                       "(lut register SPACE --target ID), or drop the filter")
    return out


def fleet(conn: Connection) -> List[Dict[str, Any]]:
    """Per device class: its boards side by side (ops measured, median |deviation| from their peers, how
    many ops they disagree on) and the ops where one board's median is more than FLEET_TOL away from the
    median of the other boards that timed the same op on the same target."""
    by_class: Dict[str, Dict[str, Any]] = {}
    for target_id, tid in activity.target_ids(conn):
        cls = tid.split("/", 1)[0]
        c = by_class.setdefault(cls, {"boards": {}, "disagreements": [], "targets": []})
        c["targets"].append(tid)
        for key, per in activity.board_medians(conn, target_id).items():
            for board, ms in per.items():
                b = c["boards"].setdefault(board, {"ops": 0, "devs": [], "disagrees": 0})
                b["ops"] += 1
                peers = [v for d, v in per.items() if d != board]
                if not peers:
                    continue
                peer = statistics.median(peers)
                dev = ms / peer - 1.0 if peer > 0 else 0.0
                b["devs"].append(abs(dev))
                if abs(dev) > FLEET_TOL:
                    b["disagrees"] += 1
                    c["disagreements"].append({"target": tid, "key": key, "board": board, "board_ms": ms,
                                               "peers_ms": peer, "peers": len(peers), "deviation": dev})
    out = []
    for cls in sorted(by_class):
        c = by_class[cls]
        dis = sorted(c["disagreements"], key=lambda d: -abs(d["deviation"]))
        out.append({"device_class": cls, "targets": c["targets"], "tolerance": FLEET_TOL,
                    "boards": [{"name": n, "ops": b["ops"], "compared": len(b["devs"]), "disagrees": b["disagrees"],
                                "median_abs_deviation": statistics.median(b["devs"]) if b["devs"] else None}
                               for n, b in sorted(c["boards"].items())],
                    "disagreements": dis[:MAX_DISAGREEMENTS], "disagreements_total": len(dis)})
    return out


def session(role: Optional[str], read_token_required: bool) -> Dict[str, Any]:
    return {"role": role, "read_token_required": read_token_required, "admin": role == "admin",
            "poll_s": 3.0}
