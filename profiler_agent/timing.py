"""The timing protocol: what it takes for one number to go into the LUT.

Adaptive, in the spirit of torch.utils.benchmark's ``adaptive_autorange``, Triton's
``do_bench`` and trtexec: calibrate how many iterations one sample needs so the timer's
resolution and per-call overhead vanish, warm up until consecutive windows agree, then take
samples until the distribution-free 95% confidence interval of the median is within
``ci`` (relative half-width) or the time budget is spent. Outliers are flagged, never dropped.

Why not call torch.utils.benchmark directly: its stopping rule is an IQR/median threshold with
no confidence interval, it does not flag outliers, and the same loop must also drive ONNX
Runtime and TensorRT engines with CUDA-event timers, so the loop is small and lives here.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from lutcore.records import TimingStats

Z95 = 1.959963984540054


class IntervalTimer:
    """Times an interval of work: ``start()`` then ``stop()`` -> elapsed seconds.

    The default times with ``time.perf_counter`` after calling ``sync`` at both ends (so
    asynchronous devices are drained); GPU backends pass a CUDA-event timer instead.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter, sync: Optional[Callable[[], None]] = None):
        self._clock = clock
        self._sync = sync
        self._t0 = 0.0

    def start(self) -> None:
        if self._sync is not None:
            self._sync()
        self._t0 = self._clock()

    def stop(self) -> float:
        if self._sync is not None:
            self._sync()
        return self._clock() - self._t0


TimerLike = Union[IntervalTimer, Callable[[], float]]


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


# -- statistics ---------------------------------------------------------------------------


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted data."""
    n = len(sorted_xs)
    if n == 0:
        raise ValueError("quantile of no samples")
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * frac


def _binom_half_cdf(n: int) -> List[float]:
    """P(X <= k) for X ~ Binomial(n, 1/2), k = 0..n (log-space, stable for large n)."""
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2) for k in range(n + 1)]
    out, acc = [], 0.0
    for lp in logs:
        acc += math.exp(lp)
        out.append(acc)
    return out


_RANK_CACHE = {}  # type: dict


def median_ci_ranks(n: int, level: float = 0.95) -> Optional[Tuple[int, int]]:
    """0-based order-statistic ranks (lo, hi) bracketing the median with >= ``level`` coverage.

    Distribution-free: [x_(j), x_(n-j+1)] covers the median with probability 1 - 2 P(X <= j-1),
    X ~ Bin(n, 1/2). Exact for n <= 2000, normal approximation above. None when n < 6 (no
    interval reaches 95%).
    """
    key = (n, level)
    if key in _RANK_CACHE:
        return _RANK_CACHE[key]
    alpha = (1 - level) / 2
    res: Optional[Tuple[int, int]]
    if n <= 2000:
        cdf = _binom_half_cdf(n)
        j = 0  # largest j (1-based rank) with P(X <= j-1) <= alpha
        while j < n // 2 and cdf[j] <= alpha:
            j += 1
        res = None if j == 0 else (j - 1, n - j)
    else:
        half = Z95 * math.sqrt(n) / 2
        lo = int(math.floor(n / 2 - half))
        hi = int(math.ceil(n / 2 + half))
        res = (max(lo - 1, 0), min(hi, n - 1))
    _RANK_CACHE[key] = res
    return res


def outlier_indices(samples: Sequence[float], k: float = 1.5) -> List[int]:
    """Indices of samples beyond Tukey's fences (Q1 - k*IQR, Q3 + k*IQR)."""
    if len(samples) < 4:
        return []
    xs = sorted(samples)
    q1, q3 = quantile(xs, 0.25), quantile(xs, 0.75)
    iqr = q3 - q1
    lo, hi = q1 - k * iqr, q3 + k * iqr
    return [i for i, x in enumerate(samples) if x < lo or x > hi]


def summarize(samples_ms: Sequence[float], iters_per_sample: int = 1, outlier_iqr: float = 1.5) -> TimingStats:
    """TimingStats of samples in ms: order statistics, moments, median CI, outlier count."""
    if not samples_ms:
        raise ValueError("cannot summarize zero samples")
    xs = sorted(samples_ms)
    n = len(xs)
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    med = quantile(xs, 0.5)
    ranks = median_ci_ranks(n)
    ci_lo = ci_hi = None
    if ranks is not None:
        ci_lo, ci_hi = min(xs[ranks[0]], med), max(xs[ranks[1]], med)
    return TimingStats(
        median_ms=med,
        mean_ms=mean,
        std_ms=std,
        min_ms=xs[0],
        p10_ms=quantile(xs, 0.10),
        p90_ms=quantile(xs, 0.90),
        n=n,
        iters_per_sample=iters_per_sample,
        ci_low_ms=ci_lo,
        ci_high_ms=ci_hi,
        outliers=len(outlier_indices(samples_ms, outlier_iqr)),
    )


def ci_half_width_rel(samples: Sequence[float]) -> Optional[float]:
    """max(median - lo, hi - median) / median of the 95% order-statistic CI; None if n < 6."""
    xs = sorted(samples)
    ranks = median_ci_ranks(len(xs))
    if ranks is None:
        return None
    med = quantile(xs, 0.5)
    if med <= 0:
        return math.inf
    return max(med - xs[ranks[0]], xs[ranks[1]] - med) / med


# -- machine speed ------------------------------------------------------------------------


class SpeedReference:
    """A fixed small workload timed between samples: its slowdown is the machine's.

    On a shared VM the whole CPU runs 1.0x to 1.9x slower for stretches of a second or more (a
    busy SMT sibling, a throttled host); compute- and memory-bound ops slow by the same factor
    at the same moment. Timing the reference right before and after each sample and dividing
    the sample by the reference's slowdown removes that factor, so ops timed in a slow second
    and networks timed in a fast one stay comparable. The reference must be cache-resident and
    run on the same runtime and thread pool as the work it corrects.

    ``base_s`` (one undisturbed reference sample) is found by :meth:`calibrate`: the fastest
    window median over a few seconds. It scales every corrected time alike, so it never moves
    the ratio of a LUT sum to a network timed in the same process.
    """

    def __init__(
        self,
        fn: Callable[[], None],
        sample_s: float = 3e-4,
        every_s: float = 0.05,
        warm_calls: int = 2,
        sensitivity: float = 0.5,
        name: str = "reference",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``every_s``: work timed between two reference samples (speed moves over ~0.5 s).

        ``sensitivity``: how much of the reference's slowdown real ops feel. The reference is
        small and compute-bound and suffers most from a busy sibling core; on this project's
        2-core test VM ops and whole networks slowed by 0.5-0.7 times as much (docs/agent.md).
        """
        self.fn = fn
        self.clock = clock
        self.sensitivity = sensitivity
        self.name = name
        self.sample_s = sample_s
        self.every_s = every_s
        self.warm_calls = warm_calls
        self.iters = 0
        self.base_s: Optional[float] = None

    def sample(self) -> float:
        """Seconds for one block of ``iters`` reference calls, after ``warm_calls`` untimed ones.

        The untimed calls reload the reference into the caches the work before it evicted: after
        a 30 ms network the first call takes 2.1x and the second 1.1x as long as in steady state.
        """
        for _ in range(self.warm_calls):
            self.fn()
        t0 = self.clock()
        for _ in range(self.iters):
            self.fn()
        return self.clock() - t0

    def calibrate(self, seconds: float = 3.0, window: int = 25) -> float:
        """Size the block to ``sample_s``, then set ``base_s`` to the fastest window median."""
        self.iters, per = 1, 0.0
        t_end = self.clock() + 0.2
        while self.clock() < t_end:  # warm up the runtime, then size the block
            per = self.sample() / self.iters
            self.iters = max(1, int(math.ceil(self.sample_s / per))) if per > 0 else 1000
        medians: List[float] = []
        t_end = self.clock() + seconds
        while self.clock() < t_end or not medians:
            medians.append(quantile(sorted(self.sample() for _ in range(window)), 0.5))
        self.base_s = min(medians)
        return self.base_s

    def factor(self, before_s: float, after_s: float) -> float:
        """The reference's slowdown between two of its samples (1.0 = as fast as calibrated)."""
        assert self.base_s is not None, "calibrate() the reference first"
        return 0.5 * (before_s + after_s) / self.base_s

    def correction(self, factor: float) -> float:
        """What to divide a sample by, given the reference's slowdown around it."""
        return 1.0 + self.sensitivity * (factor - 1.0)


# -- the measuring loop -------------------------------------------------------------------


class _SyncedTimer(IntervalTimer):
    """A timer object plus the caller's ``sync``: drained before ``start`` and after ``stop``."""

    def __init__(self, inner: IntervalTimer, sync: Callable[[], None]) -> None:
        super().__init__()
        self.inner = inner
        self.sync = sync

    def start(self) -> None:
        self.sync()
        self.inner.start()

    def stop(self) -> float:
        elapsed = self.inner.stop()
        self.sync()
        return elapsed


def _as_interval_timer(timer: Optional[TimerLike], sync: Optional[Callable[[], None]]) -> IntervalTimer:
    """An IntervalTimer that honours ``sync`` whatever form ``timer`` takes (a timer object keeps it too)."""
    if timer is None:
        return IntervalTimer(sync=sync)
    if isinstance(timer, IntervalTimer) or (hasattr(timer, "start") and hasattr(timer, "stop")):
        return timer if sync is None else _SyncedTimer(timer, sync)  # type: ignore[arg-type, return-value]
    if callable(timer):
        return IntervalTimer(clock=timer, sync=sync)
    raise TypeError(f"timer must be an IntervalTimer or a clock callable, got {type(timer).__name__}")


def _sample(fn: Callable[[], None], iters: int, timer: IntervalTimer) -> float:
    """Seconds per iteration over one block of ``iters`` back-to-back calls."""
    timer.start()
    for _ in range(iters):
        fn()
    return timer.stop() / iters


def _iters_for(per_iter_s: float, p: TimingProtocol) -> int:
    if per_iter_s <= 0:
        return p.max_iters_per_sample
    return max(1, min(p.max_iters_per_sample, int(math.ceil(p.min_sample_time_s / per_iter_s))))


def measure(
    fn: Callable[[], None],
    protocol: Optional[TimingProtocol] = None,
    sync: Optional[Callable[[], None]] = None,
    timer: Optional[TimerLike] = None,
    reference: Optional[SpeedReference] = None,
) -> TimingResult:
    """Time ``fn`` (one forward pass) under ``protocol``; samples are ms per call.

    ``sync`` drains asynchronous work (e.g. ``torch.cuda.synchronize``); ``timer`` is an
    :class:`IntervalTimer` (e.g. CUDA events) or a clock like ``time.perf_counter``.
    With a ``reference`` every sample is divided by the machine's slowdown around it.
    At least ``min_samples`` samples are always taken, even past the budget.
    """
    p = protocol or TimingProtocol()
    t = _as_interval_timer(timer, sync)
    clock = time.perf_counter
    t_begin = clock()
    deadline = t_begin + p.max_time_s

    # 1. Calibrate: double the block until it lasts min_sample_time_s (first calls included,
    #    they are the coldest and count as warm-up).
    warm_iters, iters = 0, 1
    while True:
        per = _sample(fn, iters, t)
        warm_iters += iters
        if per * iters >= p.min_sample_time_s or iters >= p.max_iters_per_sample or clock() >= deadline:
            break
        iters = min(p.max_iters_per_sample, iters * 2)
    iters = _iters_for(per, p)

    # 2. Warm up until two consecutive windows' medians agree (and warmup_s has passed); on a
    #    noisy machine they may never agree, so warm-up gets at most a quarter of the budget.
    warm_deadline = t_begin + min(p.max_warmup_s, max(p.warmup_s, 0.25 * p.max_time_s))
    prev_med: Optional[float] = None
    while True:
        window: List[float] = []
        for _ in range(p.warmup_window):
            window.append(_sample(fn, iters, t))
            warm_iters += iters
            if clock() >= warm_deadline:  # slow ops: do not spend whole windows past the warm-up cap
                break
        med = quantile(sorted(window), 0.5)
        iters = max(iters, _iters_for(med, p))
        now = clock()
        stable = prev_med is not None and abs(med - prev_med) <= p.warmup_tol * prev_med
        if (stable and now - t_begin >= p.warmup_s) or now >= warm_deadline:
            break
        prev_med = med
    warmup_s = clock() - t_begin

    # 3. Sample until the median's CI is tight enough or the budget is spent.
    samples: List[float] = []
    factors: List[float] = []
    timed_ms = 0.0
    next_check = p.min_samples
    converged, reason = False, "budget"
    if reference is not None and reference.base_s is None:
        reference.calibrate()
    before = reference.sample() if reference is not None else 0.0
    pending: List[float] = []  # raw samples since the last reference sample
    pending_ms = 0.0  # their total time
    while True:
        x = _sample(fn, iters, t) * 1e3
        timed_ms += x
        if reference is None:
            samples.append(x)
        else:
            pending.append(x)
            pending_ms += x * iters
            if pending_ms < reference.every_s * 1e3 and clock() < deadline:
                continue
            after = reference.sample()
            factors.append(reference.factor(before, after))
            samples += [y / reference.correction(factors[-1]) for y in pending]
            pending, pending_ms, before = [], 0.0, after
        n = len(samples)
        if n >= next_check:
            rel = ci_half_width_rel(samples)
            if rel is not None and rel <= p.ci:
                converged, reason = True, "ci"
                break
            next_check = n + max(1, n // 10)
        if n >= p.max_samples:
            reason = "max_samples"
            break
        if n >= p.min_samples and clock() >= deadline:
            break
    wall = clock() - t_begin
    stats = summarize(samples, iters, p.outlier_iqr)
    return TimingResult(
        stats=stats,
        samples=samples,
        outlier_indices=outlier_indices(samples, p.outlier_iqr),
        iters_per_sample=iters,
        warmup_iters=warm_iters,
        warmup_s=warmup_s,
        timed_s=timed_ms * iters / 1e3,
        wall_s=wall,
        converged=converged,
        stop_reason=reason,
        slowdown=quantile(sorted(factors), 0.5) if factors else None,
    )
