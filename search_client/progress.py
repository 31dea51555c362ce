"""Progress of a ``missing="wait"`` cost matrix while agents measure the missing ops."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO, Union

ProgressFn = Callable[[int, int], None]


class LineProgress:
    """One updating line on stderr: ``12/153 ops measured (7.8%), 41 s``."""

    def __init__(self, label: str, stream: Optional[TextIO] = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last: Optional[int] = None

    def __call__(self, measured: int, total: int) -> None:
        if not self.tty and measured == self.last:
            return  # a log file gets one line per change, not one per poll
        self.last = measured
        pct = 100.0 * measured / total if total else 100.0
        text = f"[lut] {self.label}: {measured}/{total} ops measured ({pct:.1f}%), {time.monotonic() - self.t0:.0f} s"
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def make_progress(progress: Union[bool, ProgressFn, None], label: str) -> Optional[ProgressFn]:
    if progress is True:
        return LineProgress(label)
    if progress in (False, None):
        return None
    return progress  # type: ignore[return-value]
