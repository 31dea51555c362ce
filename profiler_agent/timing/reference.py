"""The speed reference: a small fixed workload whose slowdown is the machine's."""

from __future__ import annotations

import math
import time
from typing import Callable, List, Optional

from profiler_agent.timing.stats import quantile

# One share for every process of a target: a sample's level moves with it (slowdowns run 1.0-1.9x), so
# processes that correct with different shares disagree as a whole. 0.75 left the smallest offset
# between validate processes on this project's VM over two runs, at 1 and 2 threads
# (bench/bench_process_offset.py, docs/agent.md "Stop 19").
DEFAULT_SENSITIVITY = 0.75


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
        sensitivity: float = DEFAULT_SENSITIVITY,
        name: str = "reference",
        clock: Callable[[], float] = time.perf_counter,
        auto_sensitivity: bool = False,
    ) -> None:
        """``every_s``: work timed between two reference samples (speed moves over ~0.5 s).

        ``sensitivity``: how much of the reference's slowdown real ops feel. The reference is
        small and compute-bound and suffers most from a busy sibling core; on this project's
        2-core test VM ops and whole networks slowed by 0.5-0.7 times as much (docs/agent.md).

        ``auto_sensitivity``: samples are corrected with ``sensitivity`` as they are taken, and a
        session that times in rounds then refits the share from its own rounds and rescales them
        (``profiler_agent.timing.sensitivity``).
        """
        self.fn = fn
        self.clock = clock
        self.sensitivity = sensitivity
        self.auto_sensitivity = auto_sensitivity
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

    def size_block(self) -> int:
        """Warm up the runtime and size the timed block to ``sample_s``; ``iters`` calls per block."""
        self.iters, per = 1, 0.0
        t_end = self.clock() + 0.2
        while self.clock() < t_end:
            per = self.sample() / self.iters
            self.iters = max(1, int(math.ceil(self.sample_s / per))) if per > 0 else 1000
        return self.iters

    def calibrate(self, seconds: float = 3.0, window: int = 25) -> float:
        """Size the block to ``sample_s``, then set ``base_s`` to the fastest window median."""
        self.size_block()
        medians: List[float] = []
        t_end = self.clock() + seconds
        while self.clock() < t_end or not medians:
            medians.append(quantile(sorted(self.sample() for _ in range(window)), 0.5))
        self.base_s = min(medians)
        return self.base_s

    @property
    def base_per_call_s(self) -> Optional[float]:
        """One undisturbed reference call: what ``adopt_base`` takes (a block's length varies by process)."""
        return None if self.base_s is None or not self.iters else self.base_s / self.iters

    def adopt_base(self, per_call_s: float) -> None:
        """Use a base found elsewhere (another process, ``profiler_agent.speed_base``) instead of this
        process's own, so that corrected times of both are comparable; after ``size_block``."""
        if not self.iters:
            raise ValueError("size_block() the reference before adopting a base")
        self.base_s = per_call_s * self.iters

    def factor(self, before_s: float, after_s: float) -> float:
        """The reference's slowdown between two of its samples (1.0 = as fast as calibrated)."""
        assert self.base_s is not None, "calibrate() the reference first"
        return 0.5 * (before_s + after_s) / self.base_s

    def correction(self, factor: float) -> float:
        """What to divide a sample by, given the reference's slowdown around it."""
        return 1.0 + self.sensitivity * (factor - 1.0)
