"""A target of a ``nas-lut/1`` export with every op of some spaces measured (2-3 runs each, distinct
values), for the format writers' tests."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lutcore.lutdoc import TargetLut
from lutcore.spaces.space import Space


def export_target(spaces: Sequence[Space]) -> Dict[str, Any]:
    entries: Dict[str, Dict[str, Any]] = {}
    for space in spaces:
        for key, spec in space.unique_ops().items():
            rng = random.Random(key)
            runs: List[Dict[str, Any]] = []
            for r in range(rng.randint(2, 3)):
                mean = rng.uniform(0.01, 3.0)
                runs.append({"run_id": f"run-{r:04d}", "device": "board-1",
                             "stats": {"median_ms": mean * 0.99, "mean_ms": mean, "std_ms": mean * 0.05,
                                       "min_ms": mean * 0.9, "p10_ms": mean * 0.95, "p90_ms": mean * 1.05,
                                       "n": rng.randint(20, 60)}})
            value = statistics.median(m["stats"]["median_ms"] for m in runs)
            entries[key] = {"key": key, "spec": spec.to_dict(), "value_ms": value, "measurements": runs}
    return {"id": "xavier/tensorrt/fp16", "entries": list(entries.values())}


def entry_values(target: TargetLut) -> Dict[str, float]:
    """Each entry's value (median_ms) by key; every entry of an ``export_target`` has one."""
    out: Dict[str, float] = {}
    for e in target.entries:
        v = e.value()
        assert v is not None, e.key
        out[e.key] = v
    return out


TARGET = {"device": "xavier", "backend": "tensorrt", "precision": "fp16"}


def lut(*args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess[bytes]:
    """The ``lut`` CLI of this checkout (run in ``cwd``); output as bytes (the pickle format is binary)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "lutcore", *args], capture_output=True, timeout=120, cwd=cwd, env=env)


def imported_db(tmp_path: Path, spaces: Sequence[Space]) -> Tuple[Dict[str, Any], str]:
    """A SQLite database into which `lut import` put a target with every op of ``spaces``: (target, url)."""
    target = export_target(spaces)
    doc = {"schema": "nas-lut/1", "targets": [{**{k: v for k, v in target.items() if k != "id"}, "target": TARGET}],
           "devices": []}
    (tmp_path / "doc.json").write_text(json.dumps(doc))
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    r = lut("import", str(tmp_path / "doc.json"), "--db", db)
    assert r.returncode == 0, r.stderr
    return target, db
