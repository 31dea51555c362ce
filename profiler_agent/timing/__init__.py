"""Timing one op: statistics, clocks, the speed reference and the measure loop, one module each."""

from __future__ import annotations

from profiler_agent.timing.clocks import IntervalTimer, SyncedTimer, TimerLike, as_interval_timer
from profiler_agent.timing.loop import measure
from profiler_agent.timing.protocol import TimingProtocol, TimingResult
from profiler_agent.timing.reference import SpeedReference
from profiler_agent.timing.stats import (
    Z95,
    ci_half_width_rel,
    median_ci_ranks,
    outlier_indices,
    quantile,
    summarize,
)

__all__ = [
    "Z95", "IntervalTimer", "SpeedReference", "SyncedTimer", "TimerLike", "TimingProtocol", "TimingResult",
    "as_interval_timer", "ci_half_width_rel", "measure", "median_ci_ranks", "outlier_indices", "quantile",
    "summarize",
]
