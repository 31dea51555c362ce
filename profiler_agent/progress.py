"""A dependency-free progress bar with ETA for long profiling runs.

On a terminal it redraws one line; in a log (systemd, CI, a pipe) it prints a line at most
every ``log_every`` seconds, so journal files stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO


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
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False

    def line(self, done: int, total: int, key: str = "") -> str:
        elapsed = self._clock() - self._start
        frac = done / total if total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        eta = elapsed / done * (total - done) if done else float("nan")
        eta_s = fmt_duration(eta) if done else "--:--"
        text = f"{self.label} [{bar}] {done}/{total} {frac:4.0%} elapsed {fmt_duration(elapsed)} eta {eta_s}"
        if key and done < total:
            text += f"  {key[:60]}"
        return text

    def __call__(self, done: int, total: int, key: str = "") -> None:
        text = self.line(done, total, key)
        now = self._clock()
        if self._tty:
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
