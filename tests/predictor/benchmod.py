"""bench/bench_predictor.py as a module, for the tests of its functions (bench/ is not a package)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def bench_predictor() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_predictor
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return bench_predictor
