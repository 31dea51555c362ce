"""Measurement planned by the predictor (issue 20): `lut register --budget` on a real server.

Fake agents claim the plan's jobs and post latencies from a known law (tests.server.helpers.law_ms).
The plan must enqueue batch after batch as results arrive, stop at the interval bound or the budget,
never spend more than the budget, and advance exactly once per batch when two server processes
complete its jobs concurrently (PostgreSQL).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List

import httpx
import pytest

from lutcore.ops import spec_from_dict
from tests.live_server import LiveServer, create_pg_database, drop_pg_database
from tests.server.helpers import batch, item
from tests.server.helpers import law_ms as law

SPACE, RES = "squeezenas-small", "64x128"


def target(device: str) -> Dict[str, Any]:
    return {"device": device, "backend": "tensorrt", "precision": "fp16", "batch": 1, "settings": {}}


def plan_of(srv: Any, tid: str) -> Dict[str, Any]:
    st = httpx.get(srv.api + "/status", timeout=30).json()
    return next(p for p in st["plans"] if p["target"] == tid)


def drain(srv: Any, device: str, n: int = 5) -> List[str]:
    """Claim and measure the target's jobs until none is left; the keys measured."""
    tok = {"Authorization": f"Bearer {srv.agent_token(device + '-01')}"}
    done: List[str] = []
    while True:
        r = httpx.post(srv.api + "/jobs/claim", json={"target": f"{device}/tensorrt/fp16", "n": n, "lease_s": 60},
                       headers=tok, timeout=60)
        assert r.status_code == 200, r.text
        got = r.json()["jobs"]
        if not got:
            return done
        items = [item(spec_from_dict(j["op"]["spec"]), law(spec_from_dict(j["op"]["spec"])), job_id=j["id"])
                 for j in got]
        r = httpx.post(srv.api + "/measurements", json=batch(items, device=device + "-01", target=target(device)),
                       headers=tok, timeout=120)
        assert r.status_code == 200 and r.json()["accepted"] == len(items), r.text
        done += [j["op"]["key"] for j in got]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server per database for the module: each test plans for targets of its own."""
    base = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    url = create_pg_database(base) if base else f"sqlite:///{tmp_path_factory.mktemp('plan') / 'lut.db'}"
    server = LiveServer(url, tmp_path_factory.mktemp("lutserver"))
    yield server
    server.stop()
    if base:
        drop_pg_database(base, url)


@pytest.mark.slow
def test_the_plan_spends_its_budget_batch_by_batch_and_never_more(srv):
    body = {"space": SPACE, "resolution": RES, "target": "xavier/tensorrt/fp16", "budget": 26, "interval_bound": 0.01}
    r = httpx.post(srv.api + "/spaces", json=body, headers=srv.headers(srv.search_token()), timeout=120)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["unique_ops"] == 128 and first["enqueued"] == 10  # the opening batch: enough for a first fit
    assert first["plan"]["state"] == "measuring" and first["plan"]["spent"] == 10 and first["plan"]["budget"] == 26
    depth = httpx.get(srv.api + "/status", timeout=30).json()["queue_by_target"]["xavier/tensorrt/fp16"]
    assert depth["queued"] == 10  # not the 128 a plain registration queues

    tok = {"Authorization": f"Bearer {srv.agent_token('xavier-01')}"}
    claim = {"target": "xavier/tensorrt/fp16", "n": 10, "lease_s": 60}
    held = httpx.post(srv.api + "/jobs/claim", json=claim, headers=tok, timeout=60).json()["jobs"]
    items = [item(spec_from_dict(j["op"]["spec"]), law(spec_from_dict(j["op"]["spec"])), job_id=j["id"])
             for j in held[:9]]
    assert httpx.post(srv.api + "/measurements", json=batch(items, target=target("xavier")), headers=tok,
                      timeout=120).json()["accepted"] == 9
    assert plan_of(srv, "xavier/tensorrt/fp16")["batches"] == 1  # one job of the batch is still out
    for attempt in range(3):  # the last job of the batch fails until it is parked: the plan must not stall
        if attempt:
            assert httpx.post(srv.api + "/jobs/claim", json=claim, headers=tok, timeout=60).json()["jobs"]
        r = httpx.post(srv.api + f"/jobs/{held[9]['id']}/fail", json={"error": "boom"}, headers=tok, timeout=60)
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "parked" and plan_of(srv, "xavier/tensorrt/fp16")["batches"] == 2

    keys = [j["op"]["key"] for j in held[:9]] + drain(srv, "xavier")
    assert len(keys) == len(set(keys)) == 25  # every later batch came from the plan, and it stopped at the budget
    p = plan_of(srv, "xavier/tensorrt/fp16")
    assert p["state"] == "spent" and p["spent"] == 26 and p["batches"] == 3  # 10 (one parked), 8, 8
    assert p["worst_interval"] is not None and p["worst_interval"] > 0.01

    again = httpx.post(srv.api + "/spaces", json=body, headers=srv.headers(srv.search_token()), timeout=120).json()
    assert again["enqueued"] == 0 and again["plan"]["state"] == "spent"
    more = httpx.post(srv.api + "/spaces", json={**body, "budget": 30}, headers=srv.headers(srv.search_token()),
                      timeout=120).json()
    assert more["enqueued"] == 4 and more["plan"]["spent"] == 30  # a larger budget resumes: 4 more, no more
    cm = httpx.post(srv.api + "/cost-matrix", json={"space": SPACE, "resolution": RES, "target": "xavier/tensorrt/fp16",
                                                     "missing": "predict"}, timeout=120).json()
    assert cm["coverage"]["measured"] < cm["coverage"]["total"] and cm["prediction"]["predicted"] > 0


def lut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutcore", *args], capture_output=True, text=True, timeout=120)


def test_the_plan_stops_at_the_interval_bound_from_the_cli(srv):
    args = ["register", SPACE, "-r", RES, "--target", "orin/tensorrt/fp16", "--budget", "0.5", "--interval-bound",
            "1.0", "--server", srv.url, "--token", srv.search_token()]
    r = lut(*args, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["plan"]["budget"] == 64 and out["enqueued"] == 13  # half of 128; a batch is a fifth of it
    assert len(drain(srv, "orin")) == 13
    p = plan_of(srv, "orin/tensorrt/fp16")
    assert p["state"] == "met" and p["spent"] == 13 and p["worst_interval"] <= 1.0
    st = lut("status", "--server", srv.url)
    assert st.returncode == 0 and "orin/tensorrt/fp16: met, 13/64 ops spent in 1 batch(es)" in st.stdout, st.stdout
    bad = lut("register", SPACE, "--target", "orin/tensorrt/fp16", "--budget", "1.5", "--server", srv.url)
    assert bad.returncode == 2 and "a number of ops (>= 1) or a share in (0, 1]" in bad.stderr
    both = httpx.post(srv.api + "/spaces", json={"space": SPACE, "resolution": RES, "target": "orin/tensorrt/fp16",
                                                 "interval_bound": 0.2}, headers=srv.headers(), timeout=60)
    assert both.status_code == 422 and "give a budget too" in both.text
    cells = httpx.post(srv.api + "/spaces", json={"space": "darts-cifar10", "target": "orin/tensorrt/fp16",
                                                  "budget": 10}, headers=srv.headers(), timeout=60)
    assert cells.status_code == 422 and "is a cell space: a measurement plan" in cells.text
    st = httpx.get(srv.api + "/status", timeout=30).json()
    assert [p["space"] for p in st["plans"] if p["target"] == "orin/tensorrt/fp16"] == [SPACE]  # no plan for it
    assert not any(r["space"] == "darts-cifar10" for r in st["spaces"])  # nor a registration


def test_two_server_processes_advance_the_plan_once_per_batch(srv, tmp_path):
    if not srv.db_url.startswith("postgresql"):
        pytest.skip("concurrency is proven on PostgreSQL")
    a, b = srv, LiveServer(srv.db_url, tmp_path, admin_token=srv.admin_token)
    try:
        _two_agents(a, b)
    finally:
        b.stop()


def _two_agents(a: LiveServer, b: LiveServer) -> None:
    tid = "nano/tensorrt/fp16"
    body = {"space": SPACE, "resolution": RES, "target": tid, "budget": 26, "interval_bound": 0.01}
    assert httpx.post(a.api + "/spaces", json=body, headers=a.headers(), timeout=120).status_code == 200
    measured: List[List[str]] = [[], []]
    deadline = time.monotonic() + 90

    def agent(i: int, srv: Any) -> None:
        while time.monotonic() < deadline:
            measured[i] += drain(srv, "nano", n=2)
            if plan_of(srv, tid)["state"] != "measuring":
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=agent, args=(i, s)) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = measured[0] + measured[1]
    p = plan_of(b, tid)
    assert p["state"] == "spent" and p["spent"] == 26, p  # no stall: the plan finished
    assert len(keys) == len(set(keys)) == 26 and measured[0] and measured[1]


def test_a_plan_on_a_database_without_a_server(tmp_path):
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    r = lut("register", SPACE, "-r", RES, "--target", "cpu/pytorch-cpu/fp32@threads=1", "--budget", "12", "--db", db)
    assert r.returncode == 0, r.stderr
    assert "10 jobs enqueued" in r.stdout and "measuring, 10/12 ops spent in 1 batch(es)" in r.stdout, r.stdout
    r = lut("register", SPACE, "-r", RES, "--target", "cpu/pytorch-cpu/fp32@threads=1", "--budget", "12",
            "--interval-bound", "-1", "--db", db)
    assert r.returncode == 1 and "a relative width in (0, 100]" in r.stderr and "Traceback" not in r.stderr
