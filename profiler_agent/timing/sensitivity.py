"""A speed sensitivity fitted per session: the share of the reference's slowdown this work felt.

How much of the small reference's slowdown real work feels depends on what slows the machine: a
busy SMT sibling slows the cache-resident reference more than a memory-bound op, a throttled host
slows both alike, and on a quiet host the reference's "slowdown" is mostly its own noise. On this
project's VM the share that best aligned network times across fresh processes moved from 0.3 (a
quiet host) to 1.1 (a noisy one), and in each of six runs the share that best steadied one
long-lived process's own timings came within 0.25 of it (``bench/bench_speed_ref.py``). So a
session can find its share from its own rounds: the one under which each item's rounds agree best.

The fit works on rounds, not samples: a round lasts a fraction of a second, the machine's speed
wanders over stretches of 0.5 s and more, so one slowdown per round (the median of its windows)
rescales the whole round. Items timed once give no evidence and are ignored.

Not the default (``--speed-sensitivity auto`` asks for it): every slowdown is 1.0 or more, so the
share sets a batch's level as well as its spread, and batches that fit different shares (0.3-0.75
between ``validate`` processes of one evening) disagree as a whole, by 4-8% on this VM where one
fixed share left 1-3% (``bench/bench_process_offset.py``, docs/agent.md "Stop 19"). The fit also
runs low: the reference's own noise over one round pulls a least-spread share toward 0.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from profiler_agent.timing.protocol import TimingResult
from profiler_agent.timing.reference import DEFAULT_SENSITIVITY, SpeedReference
from profiler_agent.timing.stats import outlier_indices, summarize

__all__ = ["AUTO_SENSITIVITY", "DEFAULT_SENSITIVITY", "SensitivityFit", "fit_sensitivity", "rescale", "session_fit"]

AUTO_SENSITIVITY = "auto"  # the CLI's and the backend's word for "fit it per session"
# 0.0 .. 1.0: the reference is the most cache-resident, most sibling-sensitive work there is, so real
# work feels at most all of its slowdown; a fit that ran to 1.25 misaligned processes more than 1.0 did
GRID: Tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
MIN_ITEMS = 8  # items with two or more rounds before a fit is trusted
MIN_MOTION = 0.05  # median range of an item's round slowdowns below which the speed "did not move"

Round = Tuple[float, Optional[float]]  # (ms as stored with the applied sensitivity, the round's slowdown)


def correction(slowdown: float, s: float) -> float:
    """What a sample timed at ``slowdown`` is divided by under sensitivity ``s`` (``SpeedReference``)."""
    return 1.0 + s * (slowdown - 1.0)


def rescale(value_ms: float, slowdown: float, applied: float, s: float) -> float:
    """A value corrected with sensitivity ``applied`` as sensitivity ``s`` would have corrected it."""
    return value_ms * correction(slowdown, applied) / correction(slowdown, s)


@dataclasses.dataclass(frozen=True)
class SensitivityFit:
    """The sensitivity a session's values use, and why: fitted, or the applied one kept."""

    s: float
    applied: float  # what the samples were corrected with while they were timed
    fitted: bool
    reason: str
    items: int  # items with two or more rounds that carried a slowdown
    motion: float  # median range of those items' round slowdowns

    def to_env(self) -> Dict[str, Any]:
        return {"s": self.s, "applied": self.applied, "fitted": self.fitted, "reason": self.reason,
                "items": self.items, "motion": round(self.motion, 4)}

    def factor(self, slowdown: Optional[float]) -> float:
        """What a round timed at ``slowdown`` is multiplied by (1 without a slowdown or when nothing moved)."""
        if slowdown is None or self.s == self.applied:
            return 1.0
        return rescale(1.0, slowdown, self.applied, self.s)

    def value(self, value_ms: float, slowdown: Optional[float]) -> float:
        """One round's value under this fit."""
        return value_ms * self.factor(slowdown)

    def result(self, res: TimingResult, outlier_iqr: float = 1.5) -> TimingResult:
        """One round's TimingResult under this fit: every sample scaled by the round's factor."""
        k = self.factor(res.slowdown)
        if k == 1.0:
            return res
        samples = [x * k for x in res.samples]
        return dataclasses.replace(res, samples=samples, stats=summarize(samples, res.iters_per_sample, outlier_iqr),
                                   outlier_indices=outlier_indices(samples, outlier_iqr))


def _loss(items: Sequence[Sequence[Tuple[float, float]]], applied: float, s: float) -> float:
    """Sum over items of each round's |log distance| from the item's median round, under ``s``."""
    total = 0.0
    for rounds in items:
        logs = [math.log(rescale(v, f, applied, s)) for v, f in rounds]
        mid = statistics.median(logs)
        total += sum(abs(x - mid) for x in logs)
    return total


def fit_sensitivity(items: Sequence[Sequence[Round]], applied: float, grid: Sequence[float] = GRID,
                    min_items: int = MIN_ITEMS, min_motion: float = MIN_MOTION) -> SensitivityFit:
    """The grid sensitivity under which each item's rounds agree best (least absolute log spread).

    Keeps ``applied`` when too few items have two rounds with a slowdown, or when the speed barely
    moved between rounds (then the slowdowns are the reference's noise and any fit is too)."""
    usable: List[List[Tuple[float, float]]] = []
    for rounds in items:
        with_f = [(v, f) for v, f in rounds if f is not None and v > 0]
        if len(with_f) >= 2:
            usable.append(with_f)
    motion = statistics.median([max(f for _, f in r) - min(f for _, f in r) for r in usable]) if usable else 0.0

    def keep(reason: str) -> SensitivityFit:
        return SensitivityFit(applied, applied, False, reason, len(usable), motion)

    if len(usable) < min_items:
        return keep(f"{len(usable)} item(s) with two or more rounds; a fit needs {min_items}")
    if motion < min_motion:
        return keep(f"the machine's speed barely moved between rounds (median slowdown range {motion:.3f})")
    # ties go to the value nearest the applied one: the data did not ask to move further
    best = min(grid, key=lambda s: (round(_loss(usable, applied, s), 9), abs(s - applied)))
    return SensitivityFit(best, applied, True, f"fitted on {len(usable)} items", len(usable), motion)


def session_fit(reference: Optional[SpeedReference], items: Sequence[Sequence[Round]]) -> Optional[SensitivityFit]:
    """The fit for a session's rounds, or None when its reference does not ask for one."""
    if reference is None or not reference.auto_sensitivity:
        return None
    return fit_sensitivity(items, reference.sensitivity)
