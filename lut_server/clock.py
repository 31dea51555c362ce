"""The server's clock: where lease expiry and job state times come from.

A clock is a function returning seconds since the epoch. The app takes one (``create_app(clock=...)``;
the system clock by default) and the job routes read it through the ``Now`` dependency, so tests can
drive leases past their expiry by moving a clock instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


__all__ = ["Clock", "system_clock"]
