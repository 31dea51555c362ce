"""Keeps the leases of claimed jobs alive from a background thread while ops are being timed.

Timing a claim of ops can outlast a lease; without heartbeats the server would hand the same
jobs to a second agent. A failed heartbeat (server down) is only logged: the lease has slack,
and if it lapses the server re-queues the job, which costs time but never correctness.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable, List, Optional, Set

from profiler_agent.api import ApiError, LutApi

log = logging.getLogger("profiler_agent")


class LeaseKeeper:
    """Heartbeats the tracked job ids every ``interval_s`` (default a third of the lease, at least 0.2 s)."""

    def __init__(self, api: LutApi, lease_s: float, interval_s: Optional[float] = None) -> None:
        self.api = api
        self.lease_s = lease_s
        self.interval_s = interval_s if interval_s is not None else max(0.2, lease_s / 3.0)
        self.lost: Set[int] = set()
        self.beats = 0
        self._ids: Set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> LeaseKeeper:
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def track(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._ids.update(ids)

    def untrack(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._ids.difference_update(ids)

    @property
    def tracked(self) -> List[int]:
        with self._lock:
            return sorted(self._ids)

    def beat(self) -> None:
        """One heartbeat for every tracked job now (also used by tests and after long builds)."""
        ids = self.tracked
        if not ids:
            return
        try:
            out = self.api.heartbeat(ids, self.lease_s)
        except ApiError as e:
            log.warning("heartbeat for %d job(s) failed: %s", len(ids), e)
            return
        self.beats += 1
        # only jobs still tracked: one whose results were posted while this beat was in flight is done, not lost
        lost = set(out.get("lost", [])) & set(self.tracked)
        new = lost - self.lost
        if new:
            log.warning("lease lost for job(s) %s (expired or taken over); their results are still posted", sorted(new))
            self.lost.update(new)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=35.0)  # at most one in-flight heartbeat (30 s HTTP timeout)
            self._thread = None
