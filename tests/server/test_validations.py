"""LUT truth on the server: validation results, their summaries, calibration fits, status, export/import.

Runs on SQLite and PostgreSQL (the ``db_url`` fixture) through the real app and database.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any, Dict, List, Optional

import pytest
from fastapi.testclient import TestClient

from lut_server.app import create_app
from lut_server.config import Settings
from lutcore.calibration import Calibration
from lutcore.spaces import get_space
from tests.server.helpers import ADMIN_SECRET, DEVICE, batch, item

TARGET = "cpu-x86/pytorch-cpu/fp32@threads=1"
SPACE, RES = "squeezenas-small", "64x128"
A_TRUE, B_TRUE = 0.8, 0.3  # measured = A * predicted + B: the systematic error the fit must find


def result(arch: str, predicted: float, kind: str = "random", measured: Optional[float] = None,
           n_ops: int = 20) -> Dict[str, Any]:
    m = A_TRUE * predicted + B_TRUE if measured is None else measured
    return {"arch": arch, "kind": kind, "predicted_ms": predicted, "measured_ms": m, "n_ops": n_ops,
            "rounds": [m * 1.01, m, m * 0.99]}


def body(results: List[Dict[str, Any]], run_id: Optional[str] = None, device: str = DEVICE,
         **over: Any) -> Dict[str, Any]:
    b = {"run_id": run_id or uuid.uuid4().hex, "target": TARGET, "device_name": device, "space": SPACE,
         "resolution": RES, "lut_version": 3, "results": results}
    b.update(over)
    return b


def population(n_random: int = 12, seed: int = 1) -> List[Dict[str, Any]]:
    rng = random.Random(seed)
    out = [result(f"{SPACE}:random:{i}", rng.uniform(2.0, 9.0), n_ops=15 + i) for i in range(n_random)]
    out += [result("squeezenas-lat-small", 5.0, kind="published"), result("squeezenas-mac-small", 7.5, "published")]
    return out


def query(api: Any, path: str, expect: int = 200) -> Dict[str, Any]:
    return api.get(path, expect=expect, target=TARGET, space=SPACE, resolution=RES)


def test_post_is_idempotent_and_summarised(api):
    first = body([result("a1", 10.0, measured=8.0), result("a2", 4.0, measured=5.0)], run_id="run-0000001")
    assert api.post("/validations", first) == {"accepted": 2, "duplicates": 0}
    assert api.post("/validations", first) == {"accepted": 0, "duplicates": 2}
    # a later run of a1 supersedes it in the summary, while every result stays listed
    assert api.post("/validations", body([result("a1", 10.0, measured=10.5)], run_id="run-0000002")) == {
        "accepted": 1, "duplicates": 0}
    got = query(api, "/validations")
    assert (got["target"], got["space"], got["resolution"]) == (TARGET, SPACE, RES)
    assert [(r["arch"], r["run_id"]) for r in got["results"]] == [
        ("a1", "run-0000001"), ("a2", "run-0000001"), ("a1", "run-0000002")]
    r0 = got["results"][0]
    assert r0["error"] == pytest.approx((10.0 - 8.0) / 8.0)
    assert r0["lut_version"] == 3 and r0["device_name"] == DEVICE and r0["created_at"].endswith("Z")
    assert r0["rounds"] == pytest.approx([8.08, 8.0, 7.92])
    s = got["summary"]
    errs = sorted([abs((10.0 - 10.5) / 10.5), abs((4.0 - 5.0) / 5.0)])
    assert s["n"] == 2 and s["max_abs_error"] == pytest.approx(errs[1])
    assert s["median_abs_error"] == pytest.approx(sum(errs) / 2) and s["within_5pct"] == 0.5
    assert s["within_10pct"] == 0.5
    assert got["calibration"] is None and got["calibrated_summary"] is None


@pytest.mark.parametrize("bad, where", [
    ({"results": [result("x", 1.0, measured=-1.0)]}, "measured_ms"),
    ({"results": [result("x", 0.0, measured=1.0)]}, "predicted_ms"),
    ({"results": [{**result("x", 1.0), "rounds": [1.0, 0.0]}]}, "rounds"),
    ({"results": [{**result("x", 1.0), "kind": "mystery"}]}, "kind"),
    ({"results": [{**result("x", 1.0), "n_ops": -1}]}, "n_ops"),
    ({"results": [result("x", 1.0), result("x", 2.0)]}, "appears twice"),
    ({"results": []}, "results"),
    ({"run_id": "short"}, "run_id"),
])
def test_invalid_bodies_are_422_naming_the_field(api, bad, where):
    b = body([result("ok", 1.0)])
    b.update(bad)
    r = api.c.post("/api/v1/validations", json=b, headers=api.agent)
    assert r.status_code == 422, r.text
    assert where in r.text


def test_non_finite_and_unknown_space_and_target(api):
    text = json.dumps(body([result("x", 1.0)])).replace('"predicted_ms": 1.0', '"predicted_ms": Infinity')
    assert "Infinity" in text
    r = api.c.post("/api/v1/validations", content=text, headers={**api.agent, "content-type": "application/json"})
    assert r.status_code == 422 and "predicted_ms" in r.text
    r = api.c.post("/api/v1/validations", json=body([result("x", 1.0)], space="no-such-space"), headers=api.agent)
    assert r.status_code == 422 and "no-such-space" in r.text
    r = api.c.post("/api/v1/validations", json=body([result("x", 1.0)], resolution="12xfoo"), headers=api.agent)
    assert r.status_code == 422 and "resolution" in r.text.lower()
    r = api.c.post("/api/v1/validations", json=body([result("x", 1.0)], target="not a target"), headers=api.agent)
    assert r.status_code == 422 and "target" in r.text


def test_auth_device_must_match_token(api):
    assert api.c.post("/api/v1/validations", json=body([result("x", 1.0)])).status_code == 401
    r = api.c.post("/api/v1/validations", json=body([result("x", 1.0)], device="someone-else"), headers=api.agent)
    assert r.status_code == 403 and "someone-else" in r.text
    r = api.c.post("/api/v1/validations", json=body([result("x", 1.0)], device="bad name\u0000"), headers=api.admin)
    assert r.status_code == 422 and "device_name" in r.text
    reader = api.token("read")
    assert api.c.post("/api/v1/validations", json=body([result("x", 1.0)]), headers=reader).status_code == 403


def test_fit_recovers_the_systematic_error_and_scores_held_out(api):
    api.post("/validations", body(population()))
    assert "no calibration" in json.dumps(query(api, "/calibrations", expect=404))
    fit_body = {"target": TARGET, "space": SPACE, "resolution": RES, "seed": 7}
    out = api.post("/calibrations/fit", fit_body)
    cal = Calibration.from_dict(out["calibration"])
    assert cal.a == pytest.approx(A_TRUE) and cal.b == pytest.approx(B_TRUE, abs=1e-9) and cal.c == 0.0
    assert out["n_fit"] == 6 and out["n_heldout"] == 12 - 6 + 2  # the published ones are always held out
    assert out["heldout_summary"]["n"] == out["n_heldout"]
    assert out["heldout_summary"]["max_abs_error"] < 1e-9 < out["raw_summary"]["median_abs_error"]
    assert out["raw_summary"]["n"] == out["n_heldout"] and out["fit_summary"]["n"] == 6
    # the split is seeded: the same seed gives the same split, another seed another one
    again = api.post("/calibrations/fit", fit_body)
    stored = query(api, "/calibrations")
    other = api.post("/calibrations/fit", {**fit_body, "seed": 8})
    assert again["n_fit"] == other["n_fit"] == 6
    assert set(stored["fit_archs"]) != set(query(api, "/calibrations")["fit_archs"])
    assert all(a.startswith(f"{SPACE}:random:") for a in stored["fit_archs"])
    assert stored["features"] == ["scale", "offset"] and stored["seed"] == 7
    # the stored one appears with the validations, scored on what it was not fitted on
    got = query(api, "/validations")
    assert got["calibration"]["a"] == pytest.approx(A_TRUE)
    assert got["calibrated_summary"]["n"] == 8 and got["calibrated_summary"]["max_abs_error"] < 1e-9


def test_fit_refuses_too_few_and_bad_features(api):
    api.post("/validations", body([result("r1", 3.0), result("r2", 4.0), result("p", 5.0, kind="published")]))
    base = {"target": TARGET, "space": SPACE, "resolution": RES}
    r = api.c.post("/api/v1/calibrations/fit", json=base, headers=api.agent)
    assert r.status_code == 422 and "need at least 3 random" in r.text and "have 2" in r.text
    r = api.c.post("/api/v1/calibrations/fit", json={**base, "features": ["scale", "magic"]}, headers=api.agent)
    assert r.status_code == 422 and "magic" in r.text
    r = api.c.post("/api/v1/calibrations/fit", json={**base, "model": "magic"}, headers=api.agent)
    assert r.status_code == 422 and "unknown model 'magic'" in r.text
    r = api.c.post("/api/v1/calibrations/fit", json={**base, "fit_share": 0}, headers=api.agent)
    assert r.status_code == 422 and "fit_share" in r.text
    assert api.c.post("/api/v1/calibrations/fit", json=base).status_code == 401


def test_calibration_flows_into_cost_matrix_and_status(api):
    cm_body = {"space": SPACE, "resolution": RES, "target": TARGET}
    api.post("/validations", body(population()))
    assert api.post("/cost-matrix", cm_body)["calibration"] is None  # cached for this lut_version ...
    api.post("/calibrations/fit", {"target": TARGET, "space": SPACE, "resolution": RES})
    cal = api.post("/cost-matrix", cm_body)["calibration"]  # ... yet a new fit is seen at once
    assert cal["a"] == pytest.approx(A_TRUE) and cal["b"] == pytest.approx(B_TRUE, abs=1e-9)
    assert cal["model"] == "affine" and cal["cv_error"]["identity"] > 0.05  # chosen by cross-validation
    assert cal["stale"] is False and cal["fitted_at"]
    # re-measuring one of the space's ops makes the calibration stale (it corrected other sums)
    op = next(iter(get_space(SPACE, RES).unique_ops().values()))
    target = {"device": "cpu-x86", "backend": "pytorch-cpu", "precision": "fp32", "batch": 1,
              "settings": {"threads": "1"}}
    api.post("/measurements", batch([item(op, 1.5)], target=target))
    assert api.post("/cost-matrix", cm_body)["calibration"]["stale"] is True
    st = api.get("/status")
    [v] = st["validations"]
    assert (v["space"], v["resolution"], v["target"], v["n"]) == (SPACE, RES, TARGET, 14)
    assert v["median_abs_error"] > 0.05 and v["calibrated"]["n"] == 8
    assert v["calibrated"]["max_abs_error"] < 1e-9 and v["calibrated"]["within_5pct"] == 1.0


def test_export_import_is_lossless(api, tmp_path):
    api.post("/validations", body(population()))
    api.post("/validations", body([result(f"{SPACE}:random:0", 3.3, measured=3.0)]))  # a second run of one arch
    api.post("/calibrations/fit", {"target": TARGET, "space": SPACE, "resolution": RES, "features":
                                   ["scale", "offset", "per_op"]})
    doc = api.get("/export")
    [t] = doc["targets"]
    assert len(t["validations"]) == 15 and len(t["calibrations"]) == 1
    assert t["calibration"] == {f"{SPACE}@{RES}": t["calibrations"][0]["calibration"]}
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'other.db'}", admin_token=ADMIN_SECRET))
    with TestClient(app) as other:
        r = other.post("/api/v1/import", json=doc, headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
        assert r.status_code == 200, r.text
        assert r.json()["validations_added"] == 15
        again = other.post("/api/v1/import", json=doc, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}).json()
        assert again["validations_added"] == 0
        back = other.get("/api/v1/export").json()
        assert back["targets"][0]["validations"] == t["validations"]
        assert back["targets"][0]["calibrations"] == t["calibrations"]
        assert back["targets"][0]["calibration"] == t["calibration"]
        params = {"target": TARGET, "space": SPACE, "resolution": RES}
        assert other.get("/api/v1/validations", params=params).json() == query(api, "/validations")
        bad = json.loads(json.dumps(doc))
        bad["targets"][0]["validations"][3]["measured_ms"] = -2
        r = other.post("/api/v1/import", json=bad, headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
        assert r.status_code == 422 and "targets[0].validations[3]" in r.text and "measured_ms" in r.text
    app.state.db.dispose()


def test_validate_jobs_queue_claim_and_complete(api):
    req = {"target": TARGET, "space": SPACE, "resolution": RES, "archs": "published,random:3", "rounds": 2}
    first = api.post("/validations/jobs", req)
    assert first["created"] and first["architectures"] == 5 and first["status"] == "queued"
    assert first["calibrate"] is True and first["rounds"] == 2
    again = api.post("/validations/jobs", req)  # the same request while open: the same job
    assert again["id"] == first["id"] and not again["created"]
    [job] = api.post("/jobs/claim", {"target": TARGET, "n": 5, "lease_s": 60})["jobs"]
    assert (job["id"], job["kind"], job["op"]) == (first["id"], "validate", None)
    assert job["payload"]["archs"] == "published,random:3" and job["payload"]["space"] == SPACE
    out = api.post("/validations", body(population(3), job_id=job["id"]))
    assert out == {"accepted": 5, "duplicates": 0, "job_done": 1}
    assert api.post("/jobs/claim", {"target": TARGET, "n": 5, "lease_s": 60})["jobs"] == []
    assert api.post("/validations/jobs", req)["created"]  # done: asking again queues new work


def test_validate_jobs_refuse_bad_requests(api):
    base = {"target": TARGET, "space": SPACE, "resolution": RES}
    r = api.c.post("/api/v1/validations/jobs", json={**base, "archs": "random:x"}, headers=api.agent)
    assert r.status_code == 422 and "random:N needs an integer" in r.text
    r = api.c.post("/api/v1/validations/jobs", json={**base, "archs": "random:501"}, headers=api.agent)
    assert r.status_code == 422 and "at most 500" in r.text
    r = api.c.post("/api/v1/validations/jobs", json={**base, "archs": "tfnas:random:1"}, headers=api.agent)
    assert r.status_code == 422 and "not of squeezenas-small" in r.text
    r = api.c.post("/api/v1/validations/jobs", json={**base, "space": "no-such-space"}, headers=api.agent)
    assert r.status_code == 422 and "no-such-space" in r.text
    r = api.c.post("/api/v1/validations/jobs", json={**base, "rounds": 0}, headers=api.agent)
    assert r.status_code == 422 and "rounds" in r.text
    assert api.c.post("/api/v1/validations/jobs", json=base).status_code == 401


def test_in_context_times_are_kept_and_summarised_beside_the_isolated_sum(api):
    with_ctx = [{**result(f"{SPACE}:random:{i}", 10.0, measured=12.0), "in_context": {"op:a": 6.0, "op:b": 5.4},
                 "env": {"clocks_after": {"sm_mhz": 1980, "throttle": []}}} for i in range(3)]
    api.post("/validations", body(with_ctx + [result(f"{SPACE}:random:9", 10.0, measured=11.0)]))
    got = query(api, "/validations")
    [r0] = [r for r in got["results"] if r["arch"] == f"{SPACE}:random:0"]
    assert r0["in_context"] == {"op:a": 6.0, "op:b": 5.4} and r0["in_context_ms"] == pytest.approx(11.4)
    assert r0["env"] == {"clocks_after": {"sm_mhz": 1980, "throttle": []}}
    assert got["in_context_summary"]["n"] == 3
    assert got["in_context_summary"]["median_abs_error"] == pytest.approx(0.6 / 12.0)
    assert got["isolated_summary_same_networks"]["median_abs_error"] == pytest.approx(2.0 / 12.0)
    bad = {**result("x:random:1", 1.0), "in_context": {"op:a": 0.0}}
    r = api.c.post("/api/v1/validations", json=body([bad]), headers=api.agent)
    assert r.status_code == 422 and "in_context" in r.text
    deep: dict = {}
    for _ in range(12):
        deep = {"d": deep}
    r = api.c.post("/api/v1/validations", json=body([{**result("x:random:2", 1.0), "env": deep}]), headers=api.agent)
    assert r.status_code == 422 and "env" in r.text
