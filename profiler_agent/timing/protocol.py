"""The timing protocol's knobs and what one timed op yields."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

from lutcore.records import TimingStats


@dataclasses.dataclass
class TimingProtocol:
    """Knobs of the protocol; times in seconds, ``ci`` relative (0.01 = median known to +-1%)."""

    ci: float = 0.01  # stop once the median's 95% CI half-width is within this fraction of it
    max_time_s: float = 2.0  # per-op budget, warm-up included (min_samples are taken regardless)
    min_samples: int = 10
    max_samples: int = 1000
    min_sample_time_s: float = 1e-3  # one sample lasts at least this long: iterations are batched
    warmup_s: float = 0.025  # warm up at least this long (Triton's do_bench default)
    max_warmup_s: float = 0.5  # and at most this long, or a quarter of max_time_s if less
    warmup_window: int = 5  # samples per warm-up window; consecutive window medians must agree
    warmup_tol: float = 0.05  # ... to within this fraction
    max_iters_per_sample: int = 10000
    outlier_iqr: float = 1.5  # Tukey fences: outside [Q1 - k IQR, Q3 + k IQR] is an outlier

    def __post_init__(self) -> None:
        if not 0 < self.ci < 1:
            raise ValueError(f"ci={self.ci!r} must be a fraction in (0, 1), e.g. 0.01 for 1%")
        if self.max_time_s <= 0:
            raise ValueError(f"max_time_s={self.max_time_s!r} must be positive")
        if self.min_samples < 1 or self.max_samples < self.min_samples:
            raise ValueError(
                f"need 1 <= min_samples ({self.min_samples}) <= max_samples ({self.max_samples})"
            )
        if self.min_sample_time_s < 0 or self.warmup_s < 0 or self.max_warmup_s < self.warmup_s:
            raise ValueError("need min_sample_time_s >= 0 and 0 <= warmup_s <= max_warmup_s")
        if self.warmup_window < 2:
            raise ValueError(f"warmup_window={self.warmup_window} must be at least 2")


@dataclasses.dataclass
class TimingResult:
    """Samples (ms per forward, each the mean of ``iters_per_sample`` runs) and their summary."""

    stats: TimingStats
    samples: List[float]
    outlier_indices: List[int]
    iters_per_sample: int
    warmup_iters: int
    warmup_s: float
    timed_s: float
    wall_s: float
    converged: bool
    stop_reason: str
    slowdown: Optional[float] = None  # median machine slowdown during sampling, with a SpeedReference
    env: Dict[str, Any] = dataclasses.field(default_factory=dict)  # backend provenance (clocks, enqueue time)

    @property
    def ci_rel(self) -> Optional[float]:
        """Relative half-width of the median's CI (the larger side), None when n is too small."""
        s = self.stats
        if s.ci_low_ms is None or s.ci_high_ms is None:
            return None
        return max(s.median_ms - s.ci_low_ms, s.ci_high_ms - s.median_ms) / s.median_ms
