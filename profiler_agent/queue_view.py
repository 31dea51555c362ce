"""What the server says about one target's queue: job counts by state (GET /status, ``queue_by_target``).

The daemon reads it once per claim for its progress line, and before ``--exit-when-idle`` exits: an
empty claim while other agents hold live leases means the work is not done yet. Expired leases
go back to the queue on the next claim, so ``claimed`` after an empty claim counts live ones.
"""

from __future__ import annotations

from typing import Dict, Optional

from profiler_agent.api import LutApi


def queue_counts(api: LutApi, target_id: str) -> Optional[Dict[str, int]]:
    """Job counts by state (queued, claimed, done, parked) for the target; None if the server has none."""
    out = api.status()
    counts = (out.get("queue_by_target") or {}).get(target_id)
    return {str(k): int(v) for k, v in counts.items()} if counts else None
