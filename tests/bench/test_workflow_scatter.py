"""The workflow scatter split: persistent (model) against transient (timing) error, LUT against measured."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def ws(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import workflow_scatter

    return workflow_scatter


def test_two_way_separates_an_archs_own_error_from_new_noise_and_run_offsets(ws: Any) -> None:
    rng = random.Random(1)
    own = [rng.gauss(0, 0.03) for _ in range(300)]
    offsets = [0.0, 0.08, -0.05]  # whole runs apart: removed before the split
    matrix = [[a + o + rng.gauss(0, 0.01) for o in offsets] for a in own]
    persistent, transient = ws.two_way(matrix)
    assert persistent == pytest.approx(0.03, rel=0.15) and transient == pytest.approx(0.01, rel=0.15)
    swapped = [[rng.gauss(0, 0.01) + o + rng.gauss(0, 0.03) for o in offsets] for _ in own]
    persistent, transient = ws.two_way(swapped)
    assert persistent < 0.01 and transient == pytest.approx(0.0316, rel=0.15)


def _run(started: str, archs: List[str], lut: Dict[str, float], measured: Dict[str, float],
         fit_raw: float) -> Dict[str, Any]:
    rows = [{"arch": a, "lut_ms": lut[a], "measured_ms": measured[a], "rounds": [measured[a]] * 5,
             "speed": {"slowdowns": [1.5, None, 1.5]}} for a in archs]
    return {"run": 1, "started": started, "results": [{
        "target": "cpu-bench/pytorch-cpu/fp32@speed=ref,threads=2", "space": "squeezenas-small", "rows": rows,
        "fit_rows": [{"raw_error": fit_raw, "speed": {"slowdowns": [1.1, 1.3]}}] * 3}]}


def test_the_report_names_where_the_scatter_sits(ws: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The LUT sums agree run to run and the measured times do not: the transient scatter is the truth's."""
    archs = [f"a{i}" for i in range(8)]
    lut = {a: 10.0 + i for i, a in enumerate(archs)}
    first = {a: lut[a] * (1 + 0.04 * (-1) ** i) for i, a in enumerate(archs)}
    second = {a: lut[a] * 1.02 for a in archs}
    one = {"runs": [_run("t1", archs, lut, first, 0.0)]}
    both = {"runs": [_run("t1", archs, lut, first, 0.0), dict(_run("t2", archs, lut, second, -0.05), run=2)]}
    (tmp_path / "one.json").write_text(json.dumps(one))
    (tmp_path / "both.json").write_text(json.dumps(both))  # an --append copy of one.json's run, and one more
    loaded = ws.load([str(tmp_path / "one.json"), str(tmp_path / "both.json")])
    (runs,) = loaded.values()
    assert sorted(runs) == ["both#2", "one#1"]  # t1 counted once
    assert ws.main([str(tmp_path / "one.json"), str(tmp_path / "both.json")]) == 0
    out = capsys.readouterr().out
    assert "pytorch-cpu@2" in out and "LUT 0.00%" in out and "boot 0.00%" in out
    held_second = sum(math.log(lut[a] / second[a]) for a in archs) / len(archs)
    assert f"held-fit {100 * (held_second + 0.05129):+.1f}" in out and "[slowdown held 1.50, fit 1.20]" in out
    assert ws.main([str(tmp_path / "one.json")]) == 1  # one run cannot be split
