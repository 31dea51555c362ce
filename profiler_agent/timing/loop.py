"""The measure loop: what it takes for one number to go into the LUT.

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

import math
import time
from typing import Callable, List, Optional

from profiler_agent.timing.clocks import IntervalTimer, TimerLike, as_interval_timer
from profiler_agent.timing.protocol import TimingProtocol, TimingResult
from profiler_agent.timing.reference import SpeedReference
from profiler_agent.timing.stats import ci_half_width_rel, outlier_indices, quantile, summarize


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
    t = as_interval_timer(timer, sync)
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
