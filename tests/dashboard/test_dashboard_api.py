"""The dashboard's JSON answers over a real server (SQLite and PostgreSQL), its read rule, and the page."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from lut_server.dashboard_data import FLEET_TOL, histogram
from tests.dashboard.lab import BOARDS, PARK_ERROR, SECOND_RES, SLOW_BOARD, auth, build, op_keys, post_ops, register
from tests.live_server import REPO, server_env
from tests.server.test_validations_live import DEVICE, RES, SPACE, TARGET, fit, populate


def get(server: Any, what: str, token: str = "") -> Any:
    r = httpx.get(f"{server.api}/dashboard/{what}", headers=auth(token) if token else {}, timeout=60)
    assert r.status_code == 200, (what, r.status_code, r.text)
    return r.json()


def test_histogram_bins_every_error_once():
    errs = [-0.5, -0.2, -0.199, -0.01, 0.0, 0.019, 0.02, 0.199, 0.2, 3.0]
    bins = histogram(errs)
    assert sum(b["n"] for b in bins) == len(errs)
    assert bins[0] == {"lo": None, "hi": -0.2, "n": 1} and bins[-1]["lo"] == 0.2 and bins[-1]["n"] == 2
    zero = next(b for b in bins if b["lo"] == 0.0)
    assert zero["n"] == 2  # 0.0 and 0.019; 0.02 opens the next bin


def check_lab(server: Any) -> None:
    lab = build(server)
    ov = get(server, "overview")
    cov = {(c["space"], c["resolution"]): c for c in ov["coverage"]}
    full, second = cov[(SPACE, RES)], cov[(SPACE, SECOND_RES)]
    assert full["measured"] == full["total"] > 10 and full["fraction"] == 1.0 and full["error"] is None
    assert second["measured"] < second["total"]
    (q,) = ov["queue"]
    assert q["target"] == TARGET.id and q["parked"] == 1 and q["claimed"] == 1
    assert q["queued"] == lab["second"]["enqueued"] - 2 and q["done"] > 10
    # the first registration's jobs were done minutes ago at most: a rate, so a finite ETA
    assert q["done_per_min"] > 0 and q["eta_s"] == pytest.approx((q["queued"] + 1) / (q["done_per_min"] / 60), rel=0.05)
    assert ov["totals"]["parked"] == 1 and ov["measurements"] > 4 * 10

    agents = {a["name"]: a for a in get(server, "agents")}
    assert set(BOARDS) <= set(agents)
    holder = agents["cpu-val-04"]
    assert holder["online"] and holder["jobs_held"] == 1 and holder["jobs"][0]["id"] == lab["held"]["id"]
    assert holder["jobs"][0]["key"] == lab["held"]["op"]["key"] and holder["last_heartbeat"]
    assert holder["fingerprint"] == {"cpu": "test-cpu", "board": "cpu-val-04"} and holder["fingerprint_digest"]
    assert agents["cpu-val-02"]["jobs_held"] == 0 and agents["cpu-val-02"]["last_post"]

    (parked,) = get(server, "parked")
    assert parked["id"] == lab["parked"] and parked["error"] == PARK_ERROR and parked["attempts"] == 3

    (truth,) = get(server, "truth")
    assert (truth["space"], truth["resolution"], truth["target"]) == (SPACE, RES, TARGET.id)
    assert len(truth["points"]) == 11 and sum(b["n"] for b in truth["histogram"]) == 11
    # populate() measures 0.9 x LUT + 0.2 ms: raw errors of about +8..+11%, the calibration takes them out
    assert truth["summary"]["median_abs_error"] > 0.05
    assert truth["calibrated_summary"]["max_abs_error"] < 0.03
    cal = truth["calibration"]
    assert cal["stale"] is False and cal["a"] == pytest.approx(0.9, abs=0.03) and "fitted_at" in cal

    maps = {(h["space"], h["resolution"]): h for h in get(server, "heatmaps")}
    h = maps[(SPACE, RES)]
    assert len(h["matrix"]) > 5 and all(len(r) == len(h["candidates"]) for r in h["matrix"])
    assert all(v is None or v >= 0 for r in h["matrix"] for v in r) and any(v and v > 0 for r in h["matrix"] for v in r)
    assert maps[(SPACE, SECOND_RES)]["coverage"]["measured"] < maps[(SPACE, SECOND_RES)]["coverage"]["total"]

    (fleet,) = get(server, "fleet")
    assert fleet["device_class"] == "cpu-x86" and fleet["tolerance"] == FLEET_TOL
    boards = {b["name"]: b for b in fleet["boards"]}
    assert set(boards) == set(BOARDS)
    assert boards[SLOW_BOARD]["disagrees"] == 3
    assert all(boards[b]["disagrees"] == 0 for b in BOARDS if b != SLOW_BOARD)
    assert {d["key"] for d in fleet["disagreements"]} == set(lab["slow"])
    assert all(d["board"] == SLOW_BOARD and d["deviation"] == pytest.approx(0.5) and d["peers"] == 3
               for d in fleet["disagreements"])

    # re-queue from the dashboard is the admin operation: a read token may not, an admin may
    r = httpx.post(server.api + "/jobs/requeue", json={"job_ids": [lab["parked"]]}, headers=auth(server.search_token()))
    assert r.status_code == 403
    r = httpx.post(server.api + "/jobs/requeue", json={"job_ids": [lab["parked"]]}, headers=server.headers())
    assert r.status_code == 200 and r.json() == {"requeued": [lab["parked"]]}
    assert get(server, "parked") == [] and get(server, "overview")["totals"]["parked"] == 0


def test_dashboard_panels(live_server):
    check_lab(live_server)


@pytest.mark.postgres
def test_dashboard_panels_postgres(live_server_pg):
    check_lab(live_server_pg)


def test_dashboard_read_rule(start_server):
    srv = start_server(read_token_required=True)
    for what in ("session", "overview", "agents", "parked", "truth", "heatmaps", "cell-heatmaps", "fleet"):
        assert httpx.get(f"{srv.api}/dashboard/{what}").status_code == 401, what
    page = httpx.get(srv.url + "/")
    assert page.status_code == 401 and 'id="token-form"' in page.text  # the page, to paste a token into
    tok = srv.read_token()
    assert httpx.get(srv.url + "/", headers=auth(tok)).status_code == 200
    assert httpx.get(srv.url + "/", headers=auth("lut_not_a_token_at_all_000000")).status_code == 401
    assert get(srv, "session", tok) == {"role": "read", "read_token_required": True, "admin": False, "poll_s": 3.0}
    assert get(srv, "overview", tok)["coverage"] == []
    # the assets hold no data: served like /docs' assets
    js = httpx.get(srv.url + "/dashboard/assets/dashboard.js")
    assert js.status_code == 200 and "drawOverview" in js.text


def test_dashboard_is_self_contained(live_server):
    page = httpx.get(live_server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert get(live_server, "session") == {"role": None, "read_token_required": False, "admin": False, "poll_s": 3.0}
    for asset in ("dashboard.js", "dashboard.css"):
        body = httpx.get(f"{live_server.url}/dashboard/assets/{asset}").text
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", "") and "https://" not in body, asset
    assert "http" not in page.text
    spec = httpx.get(live_server.url + "/openapi.json").json()
    for what in ("overview", "agents", "parked", "truth", "heatmaps", "cell-heatmaps", "fleet", "session"):
        op = spec["paths"][f"/api/v1/dashboard/{what}"]["get"]
        assert "$ref" in str(op["responses"]["200"]["content"]), what  # a response_model each


def test_truth_marks_a_stale_calibration(live_server):
    """A second run 30% slower moves the board's median by 15%: the sums the calibration rests on moved."""
    register(live_server)
    populate(live_server)
    fit(live_server)
    (before,) = get(live_server, "truth")
    assert before["calibration"]["stale"] is False
    keys = op_keys()
    post_ops(live_server, DEVICE, keys, 1.3, keys)
    (after,) = get(live_server, "truth")
    assert after["calibration"]["stale"] is True and after["calibration"]["drift"] == pytest.approx(0.15, abs=0.01)


NO_TORCH = """
import sys
from fastapi.testclient import TestClient
from lut_server.app import create_app
from lut_server.config import Settings
with TestClient(create_app(Settings(db_url=sys.argv[1]))) as c:
    for what in ("session", "overview", "agents", "parked", "truth", "heatmaps", "cell-heatmaps", "fleet"):
        assert c.get("/api/v1/dashboard/" + what).status_code == 200, what
    assert c.get("/").status_code == 200
assert "torch" not in sys.modules, sorted(m for m in sys.modules if "torch" in m)
print("ok")
"""


def test_dashboard_never_imports_torch(tmp_path):
    out = subprocess.run([sys.executable, "-c", NO_TORCH, f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True,
                         text=True, env=server_env(), cwd=str(REPO), timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
