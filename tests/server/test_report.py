"""`lut report` from a real server populated through the API, opened in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lut_server.report import spearman
from lutcore.spaces import get_space
from tests.live_server import REPO, server_env
from tests.server.test_validations_live import RES, SPACE, TARGET, fit, populate

PLOTS = ("heatmap", "macs_latency", "predicted_measured", "coverage")
SECTIONS = ("validation-summary", "predicted-vs-measured", "heatmap", "macs-vs-latency", "coverage", "devices")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def lut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutcore", *args], cwd=str(REPO), env=server_env(),
                          capture_output=True, text=True, timeout=300)


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(2, "--no-sandbox")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def distinct_colours(png: Path) -> int:
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(str(png))
    rgb = (np.asarray(img)[..., :3] * 255).astype("uint8").reshape(-1, 3)
    return len(np.unique(rgb, axis=0))


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / 22.5 ** 0.5)  # Pearson on average ranks
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


@pytest.mark.slow
def test_report_renders_in_chromium(live_server, tmp_path):
    populate(live_server)
    fit(live_server)
    out = tmp_path / "report.html"
    r = lut("report", "--server", live_server.url, "--target", TARGET.id, "--space", SPACE, "--resolution", RES,
            "-o", str(out))
    assert r.returncode == 0, r.stderr
    for name in PLOTS:
        png = tmp_path / f"report_{name}.png"
        assert png.stat().st_size > 5000 and distinct_colours(png) > 50, name
    page = out.read_text()
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(imgs) == 4 and all(s.startswith("data:image/png;base64,") for s in imgs)
    assert not re.search(r'(src|href)="(?!data:)', page), "the page must not load anything"
    assert "Spearman rank correlation" not in page  # it is in the plot, not the text ...
    assert "cpu-val-01" in page and "test-cpu" in page  # ... the device and its fingerprint are
    assert "calibrated (architectures not used to fit)" in page and "squeezenas-lat-small" in page
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); the page was checked as text only")
    shot = tmp_path / "shot.png"
    c = chromium(f"--screenshot={shot}", "--window-size=1400,3000", out.as_uri(), tmp=tmp_path)
    assert shot.exists(), c.stderr[-2000:]
    assert distinct_colours(shot) > 200, "the screenshot looks blank"
    dom = chromium("--dump-dom", out.as_uri(), tmp=tmp_path).stdout
    for sec in SECTIONS:
        assert f'id="{sec}"' in dom, sec
    assert dom.count("data:image/png;base64,") == 4 and "C(i, j)" in dom


def test_report_from_db_with_gaps(start_server, tmp_path):
    srv = start_server()
    space_keys = list(get_space(SPACE, RES).unique_ops())
    populate(srv, drop=tuple(space_keys[:5]))  # a few ops unmeasured; validations with made-up sums
    srv.stop()  # the report reads the database directly
    out = tmp_path / "r" / "lut.html"
    r = lut("report", "--db", srv.db_url, "--target", TARGET.id, "--space", SPACE, "--resolution", RES,
            "-o", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    found = re.search(r"not measured yet \((\d+) cells\)", page)
    assert found is not None
    n_missing = int(found.group(1))
    assert n_missing > 0 and (tmp_path / "r" / "lut_heatmap.png").exists()
    assert "Missing: " in page and "Every op of the space is measured" not in page
    assert "No calibration fitted yet" in page
    # an unknown target is a clear error, not a traceback
    r = lut("report", "--db", srv.db_url, "--target", "nope/pytorch-cpu/fp32", "--space", SPACE, "-o", str(out))
    assert r.returncode != 0 and "unknown target" in r.stderr and "Traceback" not in r.stderr


def test_report_notes_when_nothing_is_there(tmp_path):
    from lut_server.report import write_report

    cm = {"space": SPACE, "resolution": RES, "target": TARGET.id, "lut_version": 0, "candidates": ["a", "b"],
          "layers": 2, "matrix": [[None, None], [None, None]], "mask": [[False, True], [False, False]],
          "keys": [["k1", None], ["k2", "k3"]], "fixed": [], "fixed_ms": None,
          "coverage": {"measured": 0, "total": 3, "fraction": 0.0}, "missing": ["k1", "k2", "k3"],
          "calibration": None}
    paths = write_report({"cost_matrix": cm, "validations": None, "devices": [], "macs": None},
                         tmp_path / "empty.html")
    page = paths[0].read_text()
    assert [p.name for p in paths] == ["empty.html", "empty_coverage.png"]
    for note in ("No cell of the cost matrix is measured yet", "No validations yet", "MACs are unknown",
                 "No registered device"):
        assert note in page


def test_report_compares_in_context_with_isolated_when_there_are_both():
    from lut_server.report import _summary_rows

    s = {"n": 3, "median_abs_error": 0.05, "max_abs_error": 0.08, "mean_error": 0.01, "within_5pct": 0.6,
         "within_10pct": 1.0}
    rows = _summary_rows({"summary": s, "isolated_summary_same_networks": s,
                          "in_context_summary": dict(s, median_abs_error=0.02)})
    labels = [r[0] for r in rows]
    assert labels[1].startswith("isolated op times") and labels[2].startswith("in-context op times")
    assert rows[2][2] == "2.0%"
    assert len(_summary_rows({"summary": s})) == 1  # no in-context rows without in-context data
