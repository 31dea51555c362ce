"""Issue 13 on SQLite and PostgreSQL: roles, job holders, bounds, space names, operations, audit,
the admin secret, the entry aggregation rule and the cost matrix's ETag."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lut_server.app import WeakAdminToken, create_app
from lut_server.config import Settings
from lut_server.db import Database
from lut_server.schema import jobs, tokens
from tests.server.helpers import ADMIN_SECRET, TARGET, batch, conv, item

CPU = "cpu-x86/pytorch-cpu/fp32@threads=1"
CPU_DICT = {"device": "cpu-x86", "backend": "pytorch-cpu", "precision": "fp32", "batch": 1,
            "settings": {"threads": "1"}}
TINY = {"name": "tiny-shared", "input": [3, 32, 32], "catalogue": "fbnet",
        "stem": [{"op": "conv", "c_out": 8, "kernel": 3, "stride": 2}],
        "layers": [{"c_out": 8}, {"c_out": 16, "stride": 2}]}


def _entry(api, key: str, target: str = TARGET) -> dict:
    return api.post("/lookup", {"target": target, "keys": [key]}, headers={})["values"][key]


# -- roles ----------------------------------------------------------------------------------------
def test_agent_writes_only_for_its_board_and_class(api) -> None:
    xavier = api.token("agent", "xavier-01", "xavier")
    cpu_body = batch([item(conv(16))], device="xavier-01", target=CPU_DICT)
    r = api.c.post("/api/v1/measurements", json=cpu_body, headers=xavier)
    assert r.status_code == 403 and "'xavier'" in r.text and "cpu-x86" in r.text
    assert api.c.post("/api/v1/measurements", json=batch([item(conv(16))], device="xavier-02"),
                      headers=xavier).status_code == 403
    assert api.post("/measurements", batch([item(conv(16))]), headers=xavier)["accepted"] == 1
    # claims, device registration and calibration fits follow the class too
    assert api.c.post("/api/v1/jobs/claim", json={"target": CPU}, headers=xavier).status_code == 403
    assert api.c.post("/api/v1/devices", json={"name": "xavier-01", "device_class": "cpu-x86"},
                      headers=xavier).status_code == 403
    fit = {"target": CPU, "space": "squeezenas-small", "resolution": "64x128"}
    r = api.c.post("/api/v1/calibrations/fit", json=fit, headers=xavier)
    assert r.status_code == 403 and "cpu-x86" in r.text
    search = api.token("search")
    assert api.c.post("/api/v1/calibrations/fit", json=fit, headers=search).status_code == 403
    # a token for an agent needs a class; other roles refuse one
    r = api.c.post("/api/v1/tokens", json={"role": "agent", "device": "b-1"}, headers=api.admin)
    assert r.status_code == 422 and "device-class" in r.text
    r = api.c.post("/api/v1/tokens", json={"role": "search", "device_class": "xavier"}, headers=api.admin)
    assert r.status_code == 422


def test_search_role_registers_and_requests_validations_anonymous_refused(api) -> None:
    space = {"space": "squeezenas-small", "resolution": "64x128", "target": CPU}
    r = api.c.post("/api/v1/spaces", json=space)
    assert r.status_code == 401 and "search" in r.json()["detail"]
    assert api.c.post("/api/v1/spaces", json=space, headers=api.token("read")).status_code == 403
    search = api.token("search")
    assert api.post("/spaces", space, headers=search)["enqueued"] > 0
    vj = {"target": CPU, "space": "squeezenas-small", "resolution": "64x128", "archs": "random:2"}
    assert api.c.post("/api/v1/validations/jobs", json=vj).status_code == 401
    assert api.post("/validations/jobs", vj, headers=search)["created"] is True
    # search tokens do not write measurements or claim
    assert api.c.post("/api/v1/jobs/claim", json={"target": CPU}, headers=search).status_code == 403
    assert api.c.post("/api/v1/measurements", json=batch([item(conv(8))]), headers=search).status_code == 403


def test_only_the_holder_completes_releases_or_fails_a_job(api) -> None:
    api.post("/spaces", {"space": TINY, "target": TARGET}, headers=api.admin)
    a = api.token("agent", "xavier-01", "xavier")
    b = api.token("agent", "xavier-02", "xavier")
    job = api.post("/jobs/claim", {"target": TARGET, "n": 1}, headers=a)["jobs"][0]
    from lutcore.ops import spec_from_dict

    spec = spec_from_dict(job["op"]["spec"])
    # b posts a measurement naming a's job: refused whole, nothing stored, the job still a's
    r = api.c.post("/api/v1/measurements", json=batch([item(spec, job_id=job["id"])], device="xavier-02"), headers=b)
    assert r.status_code == 409 and "xavier-01" in r.text
    assert api.post("/lookup", {"target": TARGET, "keys": [spec.key]}, headers={})["missing"] == [spec.key]
    for path in (f"/jobs/{job['id']}/release", f"/jobs/{job['id']}/fail"):
        r = api.c.post("/api/v1" + path, json={"error": "x"}, headers=b)
        assert r.status_code == 409 and "held by xavier-01" in r.text
    assert api.post("/jobs/heartbeat", {"job_ids": [job["id"]]}, headers=b)["lost"] == [job["id"]]
    # b measuring the same op without naming the job adds a run but leaves a's job with a
    api.post("/measurements", batch([item(spec, 2.0)], device="xavier-02"), headers=b)
    assert api.post("/jobs/heartbeat", {"job_ids": [job["id"]]}, headers=a)["extended"] == [job["id"]]
    api.post("/measurements", batch([item(spec, 1.0, job_id=job["id"])], device="xavier-01"), headers=a)
    assert _entry(api, spec.key)["n_runs"] == 2
    r = api.c.post(f"/api/v1/jobs/{job['id']}/release", headers=a)
    assert r.status_code == 409 and "done" in r.text


# -- bounds ---------------------------------------------------------------------------------------
def test_space_bounds_are_checked_before_expanding(api) -> None:
    search = api.token("search")
    attack = dict(TINY, name="attack", layers=[{"c_out": 8, "repeat": 40000}])
    t0 = time.perf_counter()
    r = api.c.post("/api/v1/spaces", json={"space": attack, "target": TARGET}, headers=search)
    elapsed = time.perf_counter() - t0
    assert r.status_code == 422 and "layers[0].repeat" in r.text and "256" in r.text
    assert elapsed < 1.0, elapsed  # refused on the raw definition, not after building 40000 layers
    for space, field in ((dict(TINY, name="w", input=[3, 32, 100000]), "input[2]"),
                         (dict(TINY, name="d" * 300), "space.name"),
                         (dict(TINY, name="c", layers=[{"c_out": 10**6}]), "layers[0].c_out")):
        r = api.c.post("/api/v1/spaces", json={"space": space, "target": TARGET}, headers=search)
        assert r.status_code == 422 and field in r.text, r.text
    r = api.c.post("/api/v1/spaces", json={"space": "squeezenas-small", "resolution": "99999x64", "target": TARGET},
                   headers=search)
    assert r.status_code == 422 and "resolution" in r.text
    r = api.c.post("/api/v1/cost-matrix", json={"space": attack, "target": TARGET})
    assert r.status_code == 422 and "repeat" in r.text


def test_env_and_fingerprint_are_bounded(api) -> None:
    big = {"blob": "x" * 20_000}
    out = api.post("/measurements", batch([dict(item(conv(16)), env=big), item(conv(24))]))
    assert out["accepted"] == 1 and "env" in out["rejected"][0]["reason"] and "bytes" in out["rejected"][0]["reason"]
    deep: dict = {}
    d = deep
    for _ in range(20):
        d["k"] = {}
        d = d["k"]
    out = api.post("/measurements", batch([dict(item(conv(32)), env=deep)]))
    assert out["accepted"] == 0 and "nested" in out["rejected"][0]["reason"]
    r = api.c.post("/api/v1/measurements", json=batch([item(conv(40))], fingerprint=big), headers=api.agent)
    assert r.status_code == 422 and "fingerprint" in r.text


# -- custom space names -------------------------------------------------------------------------------
def test_a_space_name_is_bound_to_its_definition(api) -> None:
    search = api.token("search")
    first = api.post("/spaces", {"space": TINY, "target": TARGET}, headers=search)
    assert api.post("/spaces", {"space": TINY, "target": CPU}, headers=search)["space"] == "tiny-shared"
    assert api.post("/spaces", {"space": TINY, "target": TARGET}, headers=search)["enqueued"] == 0
    other = dict(TINY, layers=[{"c_out": 8}])
    r = api.c.post("/api/v1/spaces", json={"space": other, "target": TARGET}, headers=search)
    assert r.status_code == 409 and "tiny-shared-v2" in r.text and "new name" in r.text
    cm = api.post("/cost-matrix", {"space": "tiny-shared", "target": TARGET}, headers={})
    assert cm["layers"] == 2 and len(cm["matrix"]) == 2 and first["unique_ops"] > 0
    # an admin frees the name; the new definition is served at once (the matrix cache keys on the digest)
    assert api.c.delete("/api/v1/spaces/tiny-shared", headers=api.admin).status_code == 200
    api.post("/spaces", {"space": other, "target": TARGET}, headers=search)
    cm = api.post("/cost-matrix", {"space": "tiny-shared", "target": TARGET}, headers={})
    assert cm["layers"] == 1
    r = api.c.post("/api/v1/spaces", json={"space": dict(TINY, name="squeezenas-small"), "target": TARGET},
                   headers=search)
    assert r.status_code == 409 and "built-in" in r.text


# -- operations and audit ---------------------------------------------------------------------------
def test_requeue_cancel_quarantine_restore_delete_and_audit(api) -> None:
    api.post("/spaces", {"space": TINY, "target": TARGET}, headers=api.admin)
    job = api.post("/jobs/claim", {"target": TARGET, "n": 1}, headers=api.agent)["jobs"][0]
    for _ in range(3):
        api.post(f"/jobs/{job['id']}/fail", {"error": "boom"})
        api.post("/jobs/claim", {"target": TARGET, "n": 100}, headers=api.agent)
        for j in api.get("/status")["parked"]:
            assert j["id"] == job["id"]
    st = api.get("/status")
    assert [p["id"] for p in st["parked"]] == [job["id"]]
    # re-registration does not duplicate the parked job; an admin re-queues it
    assert api.post("/spaces", {"space": TINY, "target": TARGET}, headers=api.admin)["enqueued"] == 0
    assert api.c.post("/api/v1/jobs/requeue", json={}, headers=api.agent).status_code == 403
    assert api.post("/jobs/requeue", {"target": TARGET}, headers=api.admin) == {"requeued": [job["id"]]}
    assert api.get("/status")["parked"] == []
    out = api.post(f"/jobs/{job['id']}/cancel", {}, headers=api.admin)
    assert out["status"] == "cancelled"
    assert api.c.post(f"/api/v1/jobs/{job['id']}/cancel", headers=api.admin).status_code == 409
    assert api.post("/spaces", {"space": TINY, "target": TARGET}, headers=api.admin)["enqueued"] == 1

    # quarantine: three fake runs move the median; quarantining them restores it; restore undoes it
    key = conv(16).key
    api.post("/measurements", batch([item(conv(16), 1.0)], run_id="honest-run-1"))
    for i in range(3):
        api.post("/measurements", batch([item(conv(16), 450.0)], run_id=f"fake-run-{i:04d}", device=f"fake-{i}"),
                 headers=api.admin)
    assert _entry(api, key)["value_ms"] == 450.0
    for i in range(3):
        out = api.post("/runs/quarantine", {"target": TARGET, "run_id": f"fake-run-{i:04d}", "reason": "fake"},
                       headers=api.admin)
        assert out["measurements"] == 1
    e = _entry(api, key)
    assert e["value_ms"] == 1.0 and e["n_runs"] == 1
    api.post("/runs/restore", {"target": TARGET, "run_id": "fake-run-0000"}, headers=api.admin)
    assert _entry(api, key)["n_runs"] == 2
    r = api.c.post("/api/v1/runs/quarantine", json={"target": TARGET, "run_id": "nope"}, headers=api.admin)
    assert r.status_code == 404
    r = api.c.post("/api/v1/runs/quarantine", json={"target": TARGET, "run_id": "a\u0000b"}, headers=api.admin)
    assert r.status_code == 422 and "run_id" in r.text
    assert api.c.get("/api/v1/audit", params={"action": "a\x00"}, headers=api.admin).status_code == 422

    r = api.c.delete("/api/v1/spaces/tiny-shared", headers=api.admin)
    assert r.status_code == 200 and r.json()["rows"]["definitions"] == 1
    assert api.c.post("/api/v1/cost-matrix", json={"space": "tiny-shared", "target": TARGET}).status_code == 422
    r = api.c.delete(f"/api/v1/targets/{TARGET}", headers=api.admin)
    assert r.status_code == 200 and r.json()["rows"]["measurements"] == 4
    assert TARGET not in [t["id"] for t in api.get("/targets")]
    assert api.c.delete(f"/api/v1/targets/{TARGET}", headers=api.admin).status_code == 404

    r = api.c.get("/api/v1/audit", headers=api.agent)
    assert r.status_code == 403
    log = api.c.get("/api/v1/audit", headers=api.admin).json()
    actions = [a["action"] for a in log]
    for a in ("jobs.requeue", "job.cancel", "run.quarantine", "run.restore", "space.delete", "target.delete",
              "token.create"):
        assert a in actions, actions
    assert all(a["actor"].startswith("admin:") for a in log) and log[0]["action"] == "target.delete"
    assert log[0]["subject"] == TARGET and log[0]["at"].endswith("Z")


# -- entries ---------------------------------------------------------------------------------------
def test_entry_is_median_over_boards_of_median_over_runs(api) -> None:
    key = conv(16).key
    # board a: 5 runs at 1.0; board b: 1 run at 3.0; board c: 1 run at 2.0
    for _ in range(5):
        api.post("/measurements", batch([item(conv(16), 1.0)], device="board-a"), headers=api.admin)
    api.post("/measurements", batch([item(conv(16), 3.0)], device="board-b"), headers=api.admin)
    api.post("/measurements", batch([item(conv(16), 2.0)], device="board-c"), headers=api.admin)
    e = _entry(api, key)
    # a plain median over the 7 runs would be 1.0; one board with many runs counts once
    assert e["value_ms"] == 2.0 and e["n_runs"] == 7 and e["n_devices"] == 3
    assert e["spread_pct"] == pytest.approx((3.0 - 1.0) / 2.0 * 100)


# -- cost matrix bytes -----------------------------------------------------------------------------
def test_cost_matrix_etag_and_304(api) -> None:
    body = {"space": "squeezenas-small", "resolution": "64x128", "target": TARGET}
    r1 = api.c.post("/api/v1/cost-matrix", json=body)
    etag = r1.headers["etag"]
    r2 = api.c.post("/api/v1/cost-matrix", json=body, headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag
    api.post("/measurements", batch([item(conv(16))]))  # any LUT change is a new version
    r3 = api.c.post("/api/v1/cost-matrix", json=body, headers={"If-None-Match": etag})
    assert r3.status_code == 200 and r3.headers["etag"] != etag and r3.json()["lut_version"] == 1
    # an equal definition sent inline shares the built-in's cache entry only if identical bytes result
    assert api.c.post("/api/v1/cost-matrix", json=body).content == r3.content


# -- admin secret ----------------------------------------------------------------------------------
def test_weak_admin_secret_is_refused_and_rotation_revokes(db_url: str) -> None:
    for weak in ("secret", "admin-secret-for-tests", "a" * 40):
        with pytest.raises(WeakAdminToken, match="LUT_ADMIN_TOKEN refused"):
            create_app(Settings(db_url=db_url, admin_token=weak))
    old, new = ADMIN_SECRET, "lut_rotated_" + uuid.uuid4().hex
    app = create_app(Settings(db_url=db_url, admin_token=old))
    app.state.db.dispose()
    app = create_app(Settings(db_url=db_url, admin_token=new))
    with TestClient(app) as c:
        r = c.get("/api/v1/tokens", headers={"Authorization": f"Bearer {old}"})
        assert r.status_code == 403 and "revoked" in r.text
        listed = c.get("/api/v1/tokens", headers={"Authorization": f"Bearer {new}"}).json()
    app.state.db.dispose()
    assert [t["revoked"] for t in listed] == [True, False]
    db = Database(db_url)
    with db.read() as conn:
        prefixes = [r[0] for r in conn.execute(select(tokens.c.prefix))]
        assert all(len(p) <= 4 for p in prefixes) and old not in str(prefixes)
        assert conn.execute(select(jobs.c.id)).first() is None
    db.dispose()


def test_a_server_bug_is_a_500_not_a_422(db_url: str, monkeypatch) -> None:
    """Only bad input becomes 422; an unexpected exception inside resolution stays a server error."""
    from lut_server import spaces

    def broken(text: str, resolution: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(spaces, "_from_definition", broken)
    app = create_app(Settings(db_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/v1/cost-matrix", json={"space": TINY, "target": TARGET})
        assert r.status_code == 500 and "a bug" not in r.text  # no 422, and no traceback to the user
    app.state.db.dispose()
