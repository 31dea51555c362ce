"""A dependency-free progress bar with ETA for long profiling runs.

On a terminal it redraws one line; in a log (systemd, CI, a pipe) it prints a line at most
every ``log_every`` seconds, so journal files stay readable.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, Dict, Optional, TextIO


def fmt_duration(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Callable as ``progress(done, total, key)``, the ProfileSession callback."""

    def __init__(
        self,
        label: str = "profiling",
        stream: Optional[TextIO] = None,
        width: int = 28,
        log_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.log_every = log_every
        self._clock = clock
        self._start = clock()
        self._last_log = -1e9
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False
        self._base: Optional[int] = None  # what was done before we started (a resumed run, other agents)

    def line(self, done: int, total: int, key: str = "") -> str:
        """The bar; the ETA extrapolates what was done since the first call, not what was done before it."""
        if self._base is None:
            self._base = done
        elapsed = self._clock() - self._start
        frac = done / total if total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        gained = done - self._base
        eta_s = fmt_duration(elapsed / gained * (total - done)) if gained > 0 else "--:--"
        text = f"{self.label} [{bar}] {done}/{total} {frac:4.0%} elapsed {fmt_duration(elapsed)} eta {eta_s}"
        if key and done < total:
            text += f"  {key[:60]}"
        return text

    def __call__(self, done: int, total: int, key: str = "") -> None:
        text = self.line(done, total, key)
        now = self._clock()
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._drawn = True
            if done >= total:
                self.stream.write("\n")
                self._drawn = False
        elif done >= total or done == 0 or now - self._last_log >= self.log_every:
            self.stream.write(text + "\n")
            self._last_log = now
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class QueueProgress:
    """A target's whole queue as the daemon sees it after each claim: done of all, leased, ETA.

    ``report(counts)`` takes the server's job counts by state for the target (GET /status,
    ``queue_by_target``); the ETA follows the rate at which the queue empties, all agents
    together. On a terminal it redraws a bar; otherwise (systemd, a pipe) it logs one line.
    """

    def __init__(self, target_id: str, stream: Optional[TextIO] = None, clock: Callable[[], float] = time.monotonic,
                 log: Optional[logging.Logger] = None) -> None:
        self.bar = Progress(label=target_id, stream=stream, log_every=0.0, clock=clock)
        self.log = log or logging.getLogger("profiler_agent")

    def report(self, counts: Dict[str, int]) -> str:
        done = int(counts.get("done", 0)) + int(counts.get("parked", 0))
        total = sum(int(v) for v in counts.values())
        leased, queued = int(counts.get("claimed", 0)), int(counts.get("queued", 0))
        text = f"{self.bar.line(done, total)} ({queued} queued, {leased} leased)"
        if self.bar.tty and self.log.isEnabledFor(logging.INFO):  # -q keeps the terminal quiet too
            self.bar.stream.write("\r\x1b[2K" + text + ("\n" if done >= total else ""))
            self.bar.stream.flush()
        elif not self.bar.tty:
            self.log.info("progress %s", text)
        return text
