"""The timing protocol: order-statistic CI, outlier flags, convergence, calibration, budgets."""

from __future__ import annotations

import math
import random
import time

import pytest

from profiler_agent.timing import (
    IntervalTimer,
    SpeedReference,
    TimingProtocol,
    measure,
    median_ci_ranks,
    outlier_indices,
    summarize,
)


def _coverage(n: int, lo: int, hi: int) -> float:
    """P(x_(lo) <= median <= x_(hi)) for 0-based ranks: P(lo+1 <= Bin(n, 1/2) <= hi)."""
    return sum(math.comb(n, k) for k in range(lo + 1, hi + 1)) / 2**n


class VirtualOp:
    """A synthetic op on a virtual clock: each call advances time by a drawn duration.

    Deterministic (seeded) and independent of how loaded the test machine is.
    """

    def __init__(self, ms: float, rel_noise: float = 0.0, spike_every: int = 0, spike_x: float = 10.0, seed: int = 0):
        self.now = 0.0
        self.ms, self.rel_noise = ms, rel_noise
        self.spike_every, self.spike_x = spike_every, spike_x
        self.rng = random.Random(seed)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        d = self.ms * (1 + self.rel_noise * self.rng.gauss(0, 1))
        if self.spike_every and self.calls % self.spike_every == 0:
            d *= self.spike_x
        self.now += max(d, 1e-6) / 1e3

    def clock(self) -> float:
        return self.now


def test_median_ci_ranks_are_exact_and_tightest():
    assert median_ci_ranks(5) is None
    assert median_ci_ranks(6) == (0, 5)
    assert median_ci_ranks(10) == (1, 8)
    for n in range(6, 300):
        ranks = median_ci_ranks(n)
        assert ranks is not None
        lo, hi = ranks
        assert 0 <= lo < hi <= n - 1 and lo == n - 1 - hi
        assert _coverage(n, lo, hi) >= 0.95
        assert _coverage(n, lo + 1, hi - 1) < 0.95  # one rank narrower would not cover
    ranks = median_ci_ranks(5000)  # normal approximation
    assert ranks is not None
    lo, hi = ranks
    assert abs((hi - lo) - 1.96 * math.sqrt(5000)) < 4


def test_summarize_orders_and_flags_without_dropping():
    xs = [1.0 + 0.01 * i for i in range(30)] + [9.0]
    s = summarize(xs, iters_per_sample=4)
    assert s.n == 31 and s.iters_per_sample == 4
    assert s.min_ms == 1.0 and s.outliers == 1
    assert s.min_ms <= s.p10_ms <= s.median_ms <= s.p90_ms
    assert s.ci_low_ms is not None and s.ci_high_ms is not None
    assert s.ci_low_ms <= s.median_ms <= s.ci_high_ms
    assert s.mean_ms > s.median_ms  # the outlier is kept in the moments
    assert outlier_indices(xs) == [30]
    assert summarize([2.0]).ci_low_ms is None and summarize([2.0]).std_ms == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_converges_on_a_stable_op_to_the_requested_ci():
    op = VirtualOp(ms=2.0, rel_noise=0.02)
    p = TimingProtocol(ci=0.01, max_time_s=5.0, max_samples=1000)
    r = measure(op, p, timer=op.clock)
    assert r.converged and r.stop_reason == "ci"
    assert r.ci_rel is not None and r.ci_rel <= 0.01
    # a 95% interval misses the truth one time in twenty (the warm-up runs on the real clock, so the
    # draws differ from run to run): the estimate is held to twice the requested width
    assert abs(r.stats.median_ms - 2.0) / 2.0 < 2 * 0.01
    assert r.stats.n == len(r.samples) >= p.min_samples
    assert r.stats.n < 200  # adaptive: far fewer than a fixed 1,000-run protocol


def test_tighter_ci_needs_more_samples():
    op = VirtualOp(1.0, 0.05, seed=1)
    tight = measure(op, TimingProtocol(ci=0.01, max_time_s=5), timer=op.clock)
    op2 = VirtualOp(1.0, 0.05, seed=1)
    loose = measure(op2, TimingProtocol(ci=0.05, max_time_s=5), timer=op2.clock)
    assert loose.converged and tight.converged
    assert tight.stats.n > loose.stats.n


def test_outliers_are_flagged_and_kept():
    op = VirtualOp(ms=1.0, rel_noise=0.01, spike_every=37, spike_x=20.0)
    p = TimingProtocol(ci=0.005, max_time_s=5.0, min_sample_time_s=0.0, warmup_s=0.0, min_samples=100)
    r = measure(op, p, timer=op.clock)
    assert r.iters_per_sample == 1
    assert r.stats.outliers >= 1 and r.stats.outliers == len(r.outlier_indices)
    assert max(r.samples) > 10.0  # the spikes are still in the samples
    assert all(r.samples[i] > 10.0 for i in r.outlier_indices)
    assert abs(r.stats.median_ms - 1.0) < 0.02  # and do not move the median


def test_tiny_ops_get_several_iterations_per_sample():
    op = VirtualOp(ms=0.01)
    r = measure(op, TimingProtocol(min_sample_time_s=1e-3, max_time_s=1.0), timer=op.clock)
    assert r.iters_per_sample >= 100
    assert r.stats.iters_per_sample == r.iters_per_sample
    assert r.samples[0] == pytest.approx(0.01, rel=1e-6)
    assert r.timed_s == pytest.approx(sum(r.samples) * r.iters_per_sample / 1e3)


def test_warmup_waits_for_a_slow_start_to_settle():
    class ColdOp(VirtualOp):
        def __call__(self) -> None:  # starts 5x slower and settles geometrically (caches, autotuning)
            super().__call__()
            self.now += 4 * self.ms * 0.9**self.calls / 1e3

    op = ColdOp(ms=1.0, rel_noise=0.002)
    r = measure(op, TimingProtocol(min_sample_time_s=0.0, warmup_s=0.0, max_time_s=5.0), timer=op.clock)
    assert r.warmup_iters >= 20
    assert r.samples[0] < 1.06  # the first kept sample is already near the steady 1 ms
    assert r.stats.median_ms == pytest.approx(1.0, rel=0.05)
    op = ColdOp(ms=1.0, rel_noise=0.002)
    strict = TimingProtocol(min_sample_time_s=0.0, warmup_s=0.0, warmup_tol=0.005, max_time_s=5.0)
    assert measure(op, strict, timer=op.clock).stats.median_ms == pytest.approx(1.0, rel=0.01)


def test_busy_wait_on_the_real_clock():
    def spin() -> None:
        end = time.perf_counter() + 2e-4
        while time.perf_counter() < end:
            pass

    r = measure(spin, TimingProtocol(ci=0.02, max_time_s=0.5))
    assert 0.2 <= r.stats.median_ms < 0.6
    assert r.iters_per_sample >= 3  # a 1 ms sample needs several 0.2 ms calls
    assert r.wall_s < 1.5


def test_min_samples_hold_past_the_budget_and_max_samples_cap():
    op = VirtualOp(ms=1.0, rel_noise=0.3)
    r = measure(op, TimingProtocol(max_time_s=1e-4, min_samples=12, min_sample_time_s=0), timer=op.clock)
    assert r.stats.n == 12 and not r.converged and r.stop_reason == "budget"
    op = VirtualOp(ms=1.0, rel_noise=0.3)
    r = measure(op, TimingProtocol(ci=1e-4, max_time_s=10, max_samples=40, min_sample_time_s=0), timer=op.clock)
    assert r.stats.n == 40 and r.stop_reason == "max_samples"


def test_sync_and_interval_timers_are_used():
    calls = {"sync": 0}

    def sync() -> None:
        calls["sync"] += 1

    op = VirtualOp(ms=1.0)
    r = measure(op, TimingProtocol(max_time_s=0.05, min_sample_time_s=0), sync=sync, timer=op.clock)
    assert calls["sync"] >= 2 * (r.stats.n + 1)

    class Fixed(IntervalTimer):
        def start(self) -> None:
            pass

        def stop(self) -> float:
            return 3e-3

    r = measure(lambda: None, TimingProtocol(max_time_s=0.05, min_sample_time_s=0), timer=Fixed())
    assert r.stats.median_ms == pytest.approx(3.0) and r.stats.std_ms == 0


@pytest.mark.parametrize(
    "kw",
    [{"ci": 0}, {"ci": 1.5}, {"max_time_s": 0}, {"min_samples": 0}, {"min_samples": 5, "max_samples": 4},
     {"warmup_s": 1.0, "max_warmup_s": 0.5}, {"warmup_window": 1}],
)
def test_invalid_protocols_are_refused(kw):
    with pytest.raises(ValueError):
        TimingProtocol(**kw)


def test_slow_ops_keep_close_to_the_budget():
    def slow() -> None:
        time.sleep(0.02)

    p = TimingProtocol(ci=0.001, max_time_s=0.1, min_samples=5, max_warmup_s=0.04)
    r = measure(slow, p)
    assert r.iters_per_sample == 1 and r.stats.n == 5  # budget spent: only the minimum is taken
    assert r.warmup_iters <= 4
    assert r.wall_s < 0.5


class SharedMachine:
    """A virtual CPU whose speed halves in alternate stretches; work and reference both feel it."""

    def __init__(self, period_s: float = 0.5, slow: float = 2.0, sensitivity: float = 1.0) -> None:
        self.now, self.period_s, self.slow, self.sensitivity = 0.0, period_s, slow, sensitivity

    def speed(self) -> float:
        return self.slow if int(self.now / self.period_s) % 2 else 1.0

    def work(self, ms: float, feel: float = 1.0):
        def fn() -> None:
            self.now += ms / 1e3 * (1 + feel * (self.speed() - 1))

        return fn

    def clock(self) -> float:
        return self.now


def test_speed_reference_divides_out_a_machine_that_slows_down():
    m = SharedMachine()
    # >= 400 samples of >= 2 ms span more than one 0.5 s stretch: the speed changes while sampling
    proto = TimingProtocol(ci=0.001, max_time_s=0.5, min_samples=400, max_samples=600)
    plain = measure(m.work(2.0), proto, timer=IntervalTimer(clock=m.clock))
    assert max(plain.samples) / min(plain.samples) > 1.9  # the slow stretches are in the samples

    ref = SpeedReference(m.work(0.3), sensitivity=1.0, every_s=0.01, clock=m.clock)
    m.now = 0.0  # calibrate in a fast stretch
    ref.calibrate(seconds=0.05)
    corrected = measure(m.work(2.0), proto, timer=IntervalTimer(clock=m.clock), reference=ref)
    assert corrected.stats.median_ms == pytest.approx(2.0, rel=0.02)
    assert corrected.stats.p90_ms / corrected.stats.p10_ms < 1.1  # only samples at a change of speed stray
    assert corrected.slowdown is not None and 0.999 <= corrected.slowdown <= 2.001


def test_speed_reference_sensitivity_scales_the_correction():
    m = SharedMachine()
    ref = SpeedReference(m.work(0.3), sensitivity=0.5, every_s=0.01, clock=m.clock)
    ref.calibrate(seconds=0.05)
    assert ref.base_s == pytest.approx(0.3e-3 * ref.iters, rel=1e-6)
    assert ref.correction(1.0) == 1.0 and ref.correction(2.0) == pytest.approx(1.5)
    # ops that feel half of the reference's slowdown come out right with sensitivity 0.5
    proto = TimingProtocol(ci=0.001, max_time_s=0.5, min_samples=400, max_samples=600)
    half = measure(m.work(2.0, feel=0.5), proto, timer=IntervalTimer(clock=m.clock), reference=ref)
    assert half.stats.median_ms == pytest.approx(2.0, rel=0.02)


def test_speed_reference_reloads_caches_before_timing():
    calls = []
    ref = SpeedReference(lambda: calls.append(1), warm_calls=2)
    ref.iters = 3
    ref.sample()
    assert len(calls) == 5  # two untimed calls, then the timed block


def test_a_timer_object_with_sync_times_the_drained_work_not_the_enqueue():
    """An asynchronous device: calls only enqueue; ``sync`` runs the queue on the clock the timer reads."""
    world = {"now": 0.0, "queued": 0.0}

    def enqueue() -> None:
        world["queued"] += 2e-3  # each call is 2 ms of device work

    def sync() -> None:
        world["now"] += world["queued"]
        world["queued"] = 0.0

    timer = IntervalTimer(clock=lambda: world["now"])  # a timer object that does not sync by itself
    r = measure(enqueue, TimingProtocol(max_time_s=0.05, min_samples=5, min_sample_time_s=0), sync=sync,
                timer=timer)
    assert r.stats.median_ms == pytest.approx(2.0) and r.stats.min_ms == pytest.approx(2.0)
