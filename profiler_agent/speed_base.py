"""The speed reference's base, kept per machine so that every process divides by the same one.

``SpeedReference.calibrate`` finds the base (one undisturbed reference call) as the fastest window
median over a few seconds at process start. Every corrected time of that process scales with it,
so two processes whose starts fell in different states of a shared machine disagree as a whole:
on the 2-core test VM, bases of fresh processes ranged 308-436 us where the machine's undisturbed
call took 308, and a calibration fitted in one ``validate`` process missed networks re-timed in
the next by 10-22% (docs/agent.md, "Stop 17"). Keeping the first base a machine calibrates for a
backend and its settings, and reusing it in every later process, makes their times comparable:
``bench/bench_speed_ref.py`` measured the spread (coefficient of variation) of one network over 8
fresh processes fall from 6.8% to 4.6% (1 thread) and 11.6% to 5.8% (2 threads) at the default
sensitivity in a run where some processes started slow, and barely move (7.3% to 7.2%, 8.3% to
8.0%) in one where none did.

One JSON file, ``{key: {"per_call_s": ..., "at": ...}}``; the key names the host, backend,
settings, reference op and library versions, so another runtime or thread count calibrates anew.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Dict, Optional

from profiler_agent.paths import cache_path
from profiler_agent.spool import atomic_write_text, file_lock


def default_path() -> Path:
    """``$LUT_SPEED_BASE``, else ``$XDG_CACHE_HOME/profiler-agent/speed-base.json`` (``~/.cache/...``)."""
    return cache_path("LUT_SPEED_BASE", "speed-base.json")


class SpeedBases:
    """The kept bases, one per key; the first stored for a key stays (``keep``)."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def read(self) -> Dict[str, Dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):  # none yet, or damaged: calibrate anew rather than fail the run
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> Optional[float]:
        return _base_of(self.read().get(key))

    def keep(self, key: str, per_call_s: float) -> float:
        """The base to use for ``key``: the kept one, or ``per_call_s`` (then kept) when there is none."""
        if not per_call_s > 0:
            raise ValueError(f"a speed base must be positive, got {per_call_s!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(Path(str(self.path) + ".lock")):  # two agents starting at once keep one base
            data = self.read()
            kept = _base_of(data.get(key))
            if kept is not None:
                return kept
            at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            data[key] = {"per_call_s": per_call_s, "at": at}
            atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
            return per_call_s


def _base_of(entry: object) -> Optional[float]:
    value = entry.get("per_call_s") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
