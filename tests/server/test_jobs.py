"""Space registration, claims, leases, heartbeats, failures and parking (SQLite and PostgreSQL)."""

from __future__ import annotations

from lut_server.util import iso
from lutcore.ops import OpSpec
from lutcore.spaces import get_chain_space, get_space
from tests.server.helpers import TARGET, batch, item

SPACE = {"space": "squeezenas-small", "resolution": "64x128", "target": TARGET}


def _spec(job: dict):
    from lutcore.ops import spec_from_dict

    return spec_from_dict(job["op"]["spec"])


def test_register_space_enqueues_missing_ops_once(api) -> None:
    sp = get_space("squeezenas-small", "64x128")
    unique = sp.unique_ops()
    first = api.post("/spaces", SPACE)
    assert first["unique_ops"] == len(unique) and first["enqueued"] == len(unique)
    again = api.post("/spaces", SPACE)
    assert again["enqueued"] == 0
    st = api.get("/status")
    assert st["queue"]["queued"] == len(unique)
    cov = st["spaces"][0]  # identity skips count as measured
    assert cov["total"] - cov["measured"] == len(unique) and cov["space"] == "squeezenas-small"


def test_measured_ops_are_not_enqueued_and_complete_jobs(api) -> None:
    sp = get_space("squeezenas-small", "64x128")
    some = list(sp.unique_ops().values())[:5]
    api.post("/measurements", batch([item(s) for s in some]))
    reg = api.post("/spaces", SPACE)
    assert reg["already_measured"] == 5 and reg["enqueued"] == reg["unique_ops"] - 5
    jobs = api.post("/jobs/claim", {"target": TARGET, "n": 3, "lease_s": 60})["jobs"]
    assert len(jobs) == 3
    api.post("/measurements", batch([item(_spec(j), job_id=j["id"]) for j in jobs]))
    st = api.get("/status")["queue"]
    assert st["done"] == 3 and st["claimed"] == 0


def test_claim_gives_distinct_jobs_and_completed_never_again(api) -> None:
    total = api.post("/spaces", SPACE)["enqueued"]
    other = api.token("agent", "xavier-02")
    seen = []
    a = api.post("/jobs/claim", {"target": TARGET, "n": 10, "lease_s": 60})["jobs"]
    b = api.post("/jobs/claim", {"target": TARGET, "n": 10, "lease_s": 60}, headers=other)["jobs"]
    seen = [j["id"] for j in a + b]
    assert len(seen) == len(set(seen)) == 20
    assert a[0]["op"]["key"] == _spec(a[0]).key and a[0]["target"] == TARGET and a[0]["lease_expires_at"]
    api.post("/measurements", batch([item(_spec(j), job_id=j["id"]) for j in a]))
    for j in b:
        api.post(f"/jobs/{j['id']}/release", {}, headers=other)
    rest = api.post("/jobs/claim", {"target": TARGET, "n": 1000, "lease_s": 60}, headers=other)["jobs"]
    assert len(rest) == total - 10
    assert not {j["id"] for j in a} & {j["id"] for j in rest}
    assert api.post("/jobs/claim", {"target": TARGET, "n": 5, "lease_s": 60})["jobs"] == []
    hb = api.post("/jobs/heartbeat", {"job_ids": [a[0]["id"], rest[0]["id"]], "lease_s": 60})
    assert hb == {"extended": [], "lost": sorted([a[0]["id"], rest[0]["id"]])}


def test_expired_lease_is_reclaimed_by_another_agent(clocked_api, fake_clock) -> None:
    api = clocked_api
    api.post("/spaces", SPACE)
    other = api.token("agent", "xavier-02")
    t0 = fake_clock()
    mine = api.post("/jobs/claim", {"target": TARGET, "n": 2, "lease_s": 60})["jobs"]
    a, b = (j["id"] for j in mine)
    assert mine[0]["lease_expires_at"] == iso(t0 + 60)
    fake_clock.advance(50)
    assert api.post("/jobs/heartbeat", {"job_ids": [a], "lease_s": 60})["extended"] == [a]  # a: until t0 + 110
    fake_clock.advance(10)  # t0 + 60: b's lease ends now, but only after it is it expired
    assert api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 60}, headers=other)["jobs"][0]["id"] > b
    fake_clock.advance(1)  # b's lease is over; the heartbeat kept a's
    theirs = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 60}, headers=other)["jobs"]
    assert [j["id"] for j in theirs] == [b] and theirs[0]["attempts"] == 1  # an expired lease counts as an attempt
    assert api.post("/jobs/heartbeat", {"job_ids": [a, b], "lease_s": 60}) == {"extended": [a], "lost": [b]}
    fake_clock.advance(120)  # a's extended lease is over too
    theirs = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 60}, headers=other)["jobs"]
    assert [j["id"] for j in theirs] == [a]
    assert api.post("/jobs/heartbeat", {"job_ids": [a], "lease_s": 60}) == {"extended": [], "lost": [a]}
    r = api.c.post(f"/api/v1/jobs/{a}/fail", json={"error": "x"}, headers=api.agent)
    assert r.status_code == 409 and "xavier-02" in r.text


def test_lease_expiry_parks_a_job_whose_attempts_are_used_up(clocked_api, fake_clock) -> None:
    api = clocked_api
    api.post("/spaces", SPACE)
    first = None
    for _ in range(3):  # max_attempts is 3: three leases left to expire
        job = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 10})["jobs"][0]
        first = first or job["id"]
        assert job["id"] == first
        fake_clock.advance(11)
    nxt = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 10})["jobs"][0]
    assert nxt["id"] != first
    parked = api.get("/status")["parked"]
    assert [p["id"] for p in parked] == [first] and "lease expired" in parked[0]["error"]


def test_failing_job_is_retried_then_parked_and_shown(api) -> None:
    api.post("/spaces", SPACE)
    job = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 60})["jobs"][0]
    for attempt in (1, 2, 3):
        out = api.post(f"/jobs/{job['id']}/fail", {"error": f"CUDA error {attempt}"})
        assert out["attempts"] == attempt
        if attempt < 3:
            assert out["status"] == "queued"
            again = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 60})["jobs"][0]
            assert again["id"] == job["id"] and again["attempts"] == attempt
    assert out["status"] == "parked"
    nxt = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 60})["jobs"][0]
    assert nxt["id"] != job["id"]
    st = api.get("/status")
    assert st["queue"]["parked"] == 1
    assert st["parked"][0]["id"] == job["id"] and st["parked"][0]["error"] == "CUDA error 3"
    assert st["parked"][0]["key"] == job["op"]["key"]


def test_release_keeps_attempts_and_unknown_job_is_404(api) -> None:
    api.post("/spaces", SPACE)
    job = api.post("/jobs/claim", {"target": TARGET, "n": 1, "lease_s": 60})["jobs"][0]
    out = api.post(f"/jobs/{job['id']}/release", {})
    assert out["status"] == "queued" and out["attempts"] == 0
    api.post("/jobs/999999/release", {}, expect=404)
    api.post(f"/jobs/{job['id']}/release", {}, expect=409)


def test_cost_matrix_one_round_trip(api) -> None:
    sp = get_chain_space("squeezenas-small", "64x128")
    cm0 = api.post("/cost-matrix", SPACE)
    assert cm0["coverage"]["measured"] < cm0["coverage"]["total"]
    assert cm0["fixed_ms"] is None
    ops = sp.unique_ops()
    api.post("/measurements", batch([item(s, 0.5) for s in ops.values()]))
    cm = api.post("/cost-matrix", SPACE)
    assert cm["layers"] == sp.num_layers and cm["candidates"] == sp.candidates
    assert cm["mask"] == sp.mask()
    assert cm["coverage"]["fraction"] == 1.0 and cm["missing"] == []
    for i, row in enumerate(sp.grid):
        for j, cell in enumerate(row):
            if cm["mask"][i][j]:
                assert cm["matrix"][i][j] is None and cm["keys"][i][j] is None
                continue
            assert isinstance(cell, OpSpec)  # unmasked: a candidate op, not an Invalid
            if cell.is_identity:
                assert cm["matrix"][i][j] == 0.0
            else:
                assert cm["matrix"][i][j] == 0.5 and cm["keys"][i][j] == cell.key
    assert cm["fixed_ms"] == 0.5 * len(sp.fixed)
    assert [f["name"] for f in cm["fixed"]] == [f.name for f in sp.fixed]


def test_custom_space_definition(api) -> None:
    from lutcore.spaces import get_space_def

    d = get_space_def("squeezenas-small").to_dict()
    d["name"] = "my-space"
    reg = api.post("/spaces", {"space": d, "resolution": "64x128", "target": TARGET})
    assert reg["space"] == "my-space" and reg["enqueued"] > 0
    by_name = api.post("/cost-matrix", {"space": "my-space", "resolution": "64x128", "target": TARGET})
    assert by_name["coverage"]["measured"] < by_name["coverage"]["total"]
    r = api.c.post("/api/v1/cost-matrix", json={"space": "nope", "target": TARGET})
    assert r.status_code == 422 and "nope" in r.text
