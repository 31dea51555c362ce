"""Interval timers: what one block of work took, with asynchronous devices drained at both ends."""

from __future__ import annotations

import time
from typing import Callable, Optional, Union


class IntervalTimer:
    """Times an interval of work: ``start()`` then ``stop()`` -> elapsed seconds.

    The default times with ``time.perf_counter`` after calling ``sync`` at both ends (so
    asynchronous devices are drained); GPU backends pass a CUDA-event timer instead.
    """

    def __init__(
        self, clock: Callable[[], float] = time.perf_counter, sync: Optional[Callable[[], None]] = None
    ) -> None:
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


class SyncedTimer(IntervalTimer):
    """A timer object plus the caller's ``sync``, drained before the timer starts and before it stops.

    Draining before ``stop`` matters: a timer that reads a host clock would otherwise stop
    while the device still runs the block, and time only the enqueue.
    """

    def __init__(self, inner: IntervalTimer, sync: Callable[[], None]) -> None:
        super().__init__()
        self.inner = inner
        self.sync = sync

    def start(self) -> None:
        self.sync()
        self.inner.start()

    def stop(self) -> float:
        self.sync()
        return self.inner.stop()


def as_interval_timer(timer: Optional[TimerLike], sync: Optional[Callable[[], None]] = None) -> IntervalTimer:
    """An IntervalTimer that honours ``sync`` whatever form ``timer`` takes (a timer object keeps it too)."""
    if timer is None:
        return IntervalTimer(sync=sync)
    if isinstance(timer, IntervalTimer):
        return timer if sync is None else SyncedTimer(timer, sync)
    if callable(timer):
        return IntervalTimer(clock=timer, sync=sync)
    raise TypeError(f"timer must be an IntervalTimer or a clock callable, got {type(timer).__name__}")
