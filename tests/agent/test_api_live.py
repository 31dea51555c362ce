"""The HTTP client against a real server: retries on outages, clear errors, the job calls."""

from __future__ import annotations

from typing import List

import pytest

from profiler_agent.api import AuthError, LutApi, RequestRejected, ServerUnavailable
from tests.agent.agent_helpers import dead_url, register_space, target_id, tiny_keys
from tests.agent.flaky_proxy import FlakyProxy


def test_transient_failures_are_retried_with_backoff(live_server) -> None:
    slept: List[float] = []
    with FlakyProxy(live_server.url) as proxy, LutApi(proxy.url, live_server.agent_token("box-1"), retries=3,
                                                      sleep=slept.append) as api:
        proxy.fail_next = 2
        out = api.register_device("box-1", "cpu-test", {"model": "x"})
        assert out["name"] == "box-1"
        assert proxy.seen["POST /api/v1/devices"] == 3 and proxy.forwarded["POST /api/v1/devices"] == 1
        assert len(slept) == 2 and slept[1] >= slept[0]  # growing, jittered waits
        proxy.fail_next = 10
        with pytest.raises(ServerUnavailable, match=r"GET http://[0-9.:]+/healthz: .*after 1 attempt\)"):
            api.health()  # a health check is not retried
        with pytest.raises(ServerUnavailable, match="503.*gave up after 4 attempts"):
            api.claim("cpu-test/pytorch-cpu/fp32", 1, 10)
        assert len(slept) == 2 + 3


def test_unreachable_server(tmp_path) -> None:
    with LutApi(dead_url(), "t", retries=1, sleep=lambda s: None) as api, pytest.raises(ServerUnavailable) as e:
        api.claim("a/pytorch-cpu/fp32", 1, 10)
    assert "cannot reach the server" in str(e.value) and "gave up after 2 attempts" in str(e.value)


def test_auth_and_validation_errors_are_not_retried(live_server) -> None:
    with FlakyProxy(live_server.url) as proxy:
        with LutApi(proxy.url, "wrong", retries=5) as api, pytest.raises(AuthError) as e:
            api.claim(target_id(), 1, 10)
        assert e.value.status == 401 and "LUT_TOKEN" in str(e.value)
        assert proxy.seen["POST /api/v1/jobs/claim"] == 1
        with LutApi(proxy.url, live_server.agent_token("box-1"), retries=5) as api:
            with pytest.raises(AuthError) as e:
                api.register_device("someone-else", "cpu-test", {})
            assert e.value.status == 403 and "--name" in str(e.value)
            with pytest.raises(RequestRejected) as rejected:
                api.post_measurements({"run_id": "x"})
            assert rejected.value.status == 422 and "target: Field required" in str(rejected.value)
            with pytest.raises(RequestRejected) as rejected:
                api.release_job(987654)
            assert rejected.value.status == 404
        assert proxy.seen["POST /api/v1/measurements"] == 1


def test_claim_heartbeat_release_fail(live_server) -> None:
    tid = target_id()
    register_space(live_server.url, live_server.admin_token, tid)
    with LutApi(live_server.url, live_server.agent_token("box-1")) as api:
        api.register_device("box-1", "cpu-test", {})
        jobs = api.claim(tid, 3, 30)
        assert len(jobs) == 3 and all(j.op is not None and j.op.key in tiny_keys() and j.kind == "op" for j in jobs)
        ids = [j.id for j in jobs]
        assert set(api.heartbeat(ids, 30)["extended"]) == set(ids)
        assert api.release_job(ids[0])["status"] == "queued"
        assert api.fail_job(ids[1], "boom")["status"] == "queued"
        hb = api.heartbeat(ids, 30)
        assert set(hb["lost"]) == {ids[0], ids[1]} and hb["extended"] == [ids[2]]
        again = api.claim(tid, 10, 30)
        assert set(ids[:2]) <= {j.id for j in again} and ids[2] not in {j.id for j in again}
        assert len(again) == len(tiny_keys()) - 1


def test_post_validations_and_fit_calibration(live_server) -> None:
    """The typed calls the CLI and the daemon post LUT-truth results with; a repeat stores nothing twice."""
    from lutcore.spaces import get_space
    from profiler_agent.validate import ArchResult, validation_body

    space = get_space("squeezenas-small", "64x128")
    results = [ArchResult(f"squeezenas-small:random:{i}", space.name, space.resolution_str, 2.0 + i,
                          0.9 * (2.0 + i) + 0.2, 20 + i, [0.9 * (2.0 + i) + 0.2], "random") for i in range(6)]
    body = validation_body("val-run-000042", target_id(), "box-1", space, None, results)
    with LutApi(live_server.url, live_server.agent_token("box-1")) as api:
        assert api.post_validations(body) == {"accepted": 6, "duplicates": 0}
        assert api.post_validations(body) == {"accepted": 0, "duplicates": 6}
        fit = api.fit_calibration(target_id(), space.name, space.resolution_str, seed=3)
        assert fit["n_fit"] == 3 and fit["n_heldout"] == 3  # half of six random architectures, at least three
        assert fit["heldout_summary"]["n"] == 3 and fit["calibration"]["model"] in ("identity", "scale")
        with pytest.raises(RequestRejected) as e:
            api.post_validations(dict(body, space="no-such-space"))
        assert e.value.status == 422 and "no-such-space" in e.value.detail
