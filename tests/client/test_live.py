"""The client against a real LUT server over HTTP (tests/live_server.py), and a real agent for "wait"."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from typing import List

import httpx
import pytest
import torch

from lutcore.ops import OpSpec
from lutcore.records import Target
from lutcore.spaces import get_chain_arch, get_space, space_from_dict
from search_client import LUTClient, MissingEntriesError, TransportError
from tests.client.lutdata import TINY, fake_ms, measurement_batch
from tests.live_server import server_env

RES = "64x128"


def _post(live_server, space, target: Target, drop=()) -> dict:
    """Time every op of the space (but ``drop``) at fake_ms, through the API with an agent token."""
    name = f"{target.device}-01"
    tok = live_server.agent_token(name)
    auth = {"Authorization": f"Bearer {tok}"}
    r = httpx.post(live_server.api + "/devices", json={"name": name, "device_class": target.device}, headers=auth)
    assert r.status_code == 200, r.text
    body = measurement_batch(space, target, name, uuid.uuid4().hex, drop)
    r = httpx.post(live_server.api + "/measurements", json=body, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == len(body["items"]) and not out["rejected"], out
    return out


def _target(device: str) -> Target:
    return Target(device=device, backend="pytorch-cpu", precision="fp32", settings={"threads": "1"})


def test_matrix_equals_lut_entry_by_entry(live_server):
    _check_entry_by_entry(live_server)


@pytest.mark.postgres
def test_matrix_equals_lut_entry_by_entry_postgres(live_server_pg):
    _check_entry_by_entry(live_server_pg)


def _check_entry_by_entry(live_server):
    space = get_space("squeezenas-small", RES)
    target = _target("cpu-client-eq")
    _post(live_server, space, target)
    with LUTClient(live_server.url, batch_size=40) as client:
        cm = client.cost_matrix("squeezenas-small", target, resolution=RES, dtype=torch.float64)
        assert cm.complete and cm.coverage["fraction"] == 1.0 and cm.lut_version
        lut = client.lookup(list(space.unique_ops()), target)
        assert not lut.missing and len(lut.values) == len(space.unique_ops())
        assert client.round_trips == 1 + math.ceil(len(space.unique_ops()) / 40)  # lookups are batched
        for i, row in enumerate(space.grid):
            for j, cell in enumerate(row):
                assert cm.keys[i][j] == cell.key
                if cell.is_identity:
                    assert float(cm.C[i, j]) == 0.0
                else:
                    assert float(cm.C[i, j]) == lut.values[cell.key] == pytest.approx(fake_ms(cell.key))
        assert cm.fixed == pytest.approx(sum(lut.values[f.spec.key] for f in space.fixed))
        # asking again costs no round trip
        n = client.round_trips
        assert client.cost_matrix("squeezenas-small", target.id, resolution=RES, dtype=torch.float64) is cm
        same = client.cost_matrix(space, target, dtype=torch.float64)  # a Space: same cached response
        assert torch.equal(same.C, cm.C) and same.keys == cm.keys
        assert client.round_trips == n
        # predictions are the LUT sum of the chosen ops plus the fixed ones
        arch = get_chain_arch("squeezenas-small:random:5", RES)
        pred = client.predict_latency(space, arch, target)
        expect = sum(lut.values.get(s.key, 0.0) for s in arch.layer_ops()) + cm.fixed
        assert pred.ms == pytest.approx(expect) and pred.calibration is None


def test_definition_space_with_mask(live_server):
    space = space_from_dict(TINY).at(None)
    target = _target("cpu-client-def")
    _post(live_server, space, target)
    with LUTClient(live_server.url) as client:
        cm = client.cost_matrix(TINY, target)  # sent as a definition: the server does not know it by name
        assert cm.mask.tolist() == space.mask() and bool(cm.mask.any())
        assert float(cm.C[cm.mask].abs().sum()) == 0.0
        for i, row in enumerate(space.grid):
            for j, cell in enumerate(row):
                if isinstance(cell, OpSpec) and not cell.is_identity:
                    assert float(cm.C[i, j]) == pytest.approx(fake_ms(cell.key), rel=1e-6)


def test_missing_entry_raises_by_default(live_server):
    space = get_space("squeezenas-small", RES)
    target = _target("cpu-client-miss")
    keys = list(space.unique_ops())
    drop = [keys[5], keys[-1]]
    _post(live_server, space, target, drop=drop)
    with LUTClient(live_server.url) as client:
        with pytest.raises(MissingEntriesError) as e:
            client.cost_matrix("squeezenas-small", target, resolution=RES)
        assert sorted(e.value.missing) == sorted(drop)
        msg = str(e.value)
        assert drop[0] in msg and live_server.url in msg
        assert "profiler-agent run --device cpu-client-miss" in msg and "--threads 1" in msg
        assert "/api/v1/spaces" in msg
        cm = client.cost_matrix("squeezenas-small", target, resolution=RES, missing="nan")
        assert cm.coverage["measured"] == cm.coverage["total"] - 2 and math.isnan(cm.fixed)
        assert {cm.keys[i][j] for i, j in torch.isnan(cm.C).nonzero().tolist()} == {drop[0]}
        with pytest.raises(ValueError, match="unmeasured"):
            from search_client import ExpectedCostLoss

            ExpectedCostLoss(cm.C, cm.mask)


def test_file_mode_gives_the_same_matrix(live_server, tmp_path):
    space = get_space("squeezenas-small", RES)
    target = _target("cpu-client-file")
    _post(live_server, space, target)
    with LUTClient(live_server.url) as client:
        doc = client.export(target)
        path = tmp_path / "lut.json"
        path.write_text(json.dumps(doc))
        offline = LUTClient.from_file(path)
        for metric in ("median_ms", "mean_ms", "p10_ms", "p90_ms"):
            a = client.cost_matrix("squeezenas-small", target, metric=metric, resolution=RES, dtype=torch.float64)
            b = offline.cost_matrix("squeezenas-small", target, metric=metric, resolution=RES, dtype=torch.float64)
            assert torch.allclose(a.C, b.C, rtol=1e-12, atol=0), metric
            assert torch.equal(a.mask, b.mask) and a.keys == b.keys and a.candidates == b.candidates
            assert a.fixed == pytest.approx(b.fixed, rel=1e-12)
            assert a.coverage == b.coverage and a.lut_version == b.lut_version
        assert offline.round_trips == 0


def test_disk_cache_serves_when_the_server_is_down(live_server, tmp_path):
    space = space_from_dict(TINY).at(None)
    target = _target("cpu-client-disk")
    _post(live_server, space, target)
    with LUTClient(live_server.url, cache_dir=tmp_path) as client:
        cm = client.cost_matrix(TINY, target)
    down = "http://127.0.0.1:9"  # discard port: nothing listens
    with LUTClient(down, retries=1, backoff=0.01, cache_dir=tmp_path) as client:
        with pytest.warns(UserWarning, match="unreachable"):
            again = client.cost_matrix(TINY, target)
        assert torch.equal(again.C, cm.C) and again.lut_version == cm.lut_version
    with LUTClient(down, retries=0, cache_dir=tmp_path / "empty") as client, pytest.raises(TransportError):
        client.cost_matrix(TINY, target)


def _agent_cmd() -> List[str]:
    """This checkout's agent (with ``server_env``'s PYTHONPATH), not whichever one is installed."""
    return [sys.executable, "-m", "profiler_agent.cli"]


def _agent_available() -> bool:
    try:
        from profiler_agent.cli import build_parser
    except ImportError:
        return False
    try:
        build_parser().parse_args(["run", "--exit-when-idle", "--backend", "pytorch-cpu"])
    except SystemExit:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _agent_available(), reason="profiler_agent (run --exit-when-idle) is not available")
def test_wait_returns_once_a_real_agent_filled_the_queue(live_server, tmp_path):
    space = space_from_dict(TINY).at(None)
    target = _target("cpu-client-wait")
    name = "cpu-client-wait-01"
    token = live_server.agent_token(name)
    seen: List[tuple] = []
    procs: List[subprocess.Popen] = []
    log = (tmp_path / "agent.log").open("w")  # noqa: SIM115 - the agent writes to it while the client waits

    def progress(measured: int, total: int) -> None:
        seen.append((measured, total))
        if not procs:  # the space is registered now: start the board's agent
            cmd = _agent_cmd() + [
                "run", "--device", target.device, "--name", name, "--backend", "pytorch-cpu", "--threads", "1",
                "--server", live_server.url, "--token", token, "--exit-when-idle", "--poll", "0.5",
                "--max-time-per-op", "0.1", "--min-samples", "5", "--max-warmup", "0.05", "--ci", "0.2",
            ]  # fmt: skip
            env = server_env({"LUT_SPOOL": str(tmp_path / "spool")})
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))

    try:
        # "wait" registers the space: a search token (anonymous registration is refused)
        with LUTClient(live_server.url, poll_interval=0.5, token=live_server.search_token()) as client:
            cm = client.cost_matrix(TINY, target, missing="wait", timeout=240, progress=progress)
            assert cm.complete and cm.coverage["fraction"] == 1.0
            lut = client.lookup(list(space.unique_ops()), target)
            assert not lut.missing
        assert procs, "the client never reported progress"
        assert seen[0][0] < seen[0][1] and seen[-1][0] == seen[-1][1] == cm.coverage["total"]
        assert [m for m, _ in seen] == sorted(m for m, _ in seen)
        for i, row in enumerate(space.grid):
            for j, cell in enumerate(row):
                if isinstance(cell, OpSpec):
                    expect = 0.0 if cell.is_identity else lut.values[cell.key]
                    assert float(cm.C[i, j]) == pytest.approx(expect)
        assert procs[0].wait(timeout=120) == 0, (tmp_path / "agent.log").read_text()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        log.close()


def test_wait_stops_when_agents_gave_up(live_server):
    """A job failed max_attempts times is parked: "wait" says so instead of waiting for its timeout."""
    space = space_from_dict(TINY).at(None)
    target = _target("cpu-client-parked")
    name = "cpu-client-parked-01"
    auth = {"Authorization": f"Bearer {live_server.agent_token(name)}"}
    httpx.post(live_server.api + "/devices", json={"name": name, "device_class": target.device}, headers=auth)
    with LUTClient(live_server.url, poll_interval=0.2, token=live_server.search_token()) as client:
        client.register_space(TINY, target)
        bad = None
        for attempt in range(3):  # claim and fail one op until the server parks it
            r = httpx.post(live_server.api + "/jobs/claim", json={"target": target.id, "n": 1, "lease_s": 60},
                           headers=auth)  # fmt: skip
            job = r.json()["jobs"][0]
            bad = bad or job["op"]["key"]
            assert job["op"]["key"] == bad or attempt == 0
            r = httpx.post(f"{live_server.api}/jobs/{job['id']}/fail", json={"error": "CUDA error: out of memory"},
                           headers=auth)  # fmt: skip
            assert r.status_code == 200, r.text
        assert bad is not None
        body = measurement_batch(space, target, name, uuid.uuid4().hex, drop=[bad])
        assert httpx.post(live_server.api + "/measurements", json=body, headers=auth).status_code == 200
        from search_client import MeasurementFailed

        with pytest.raises(MeasurementFailed) as e:
            client.cost_matrix(TINY, target, missing="wait", timeout=60, progress=False)
        assert e.value.missing == [bad] and "CUDA error: out of memory" in str(e.value)


def test_read_token_required(start_server):
    srv = start_server(read_token_required=True)
    from search_client import ServerError

    with LUTClient(srv.url) as client, pytest.raises(ServerError, match="401.*token=") as e:
        client.cost_matrix(TINY, _target("cpu-client-auth"), missing="nan")
    assert e.value.status == 401
    with LUTClient(srv.url, token=srv.read_token()) as client:
        cm = client.cost_matrix(TINY, _target("cpu-client-auth"), missing="nan")
        assert cm.coverage["measured"] < cm.coverage["total"] and cm.lut_version == 0
