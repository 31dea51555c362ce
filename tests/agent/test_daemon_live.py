"""The daemon end to end against real `lut serve` processes (SQLite and PostgreSQL) over HTTP.

Each test registers a space for a target, runs a real agent (`pytorch-cpu` or `onnxruntime`)
with tiny time budgets, and checks what the server holds afterwards: every op measured,
every measurement stored exactly once, no job left claimed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import httpx
import pytest

from profiler_agent import cli
from profiler_agent.api import LutApi
from profiler_agent.backends.torch_cpu import TorchCPUBackend
from profiler_agent.daemon import Agent, AgentConfig
from profiler_agent.session import ProfileSession
from profiler_agent.spool import Spool
from profiler_agent.timing import TimingProtocol
from tests.agent.agent_helpers import (
    FAST,
    cost_matrix,
    dead_url,
    measurement_counts,
    queue,
    register_space,
    target_id,
    tiny_keys,
)
from tests.agent.flaky_proxy import FlakyProxy
from tests.live_server import REPO, server_env

NAME = "box-1"


def agent_argv(url: str, token: str, spool: Path, *extra: str, backend: str = "pytorch-cpu") -> List[str]:
    return [
        "run", "--server", url, "--token", token, "--device", "cpu-test", "--name", NAME,
        "--backend", backend, "--threads", "1", "--spool", str(spool), "--retries", "1", "--poll", "0.2",
        "-q", *FAST, *extra,
    ]


def assert_complete(url: str, tid: str, keys: List[str], space=None, resolution=None) -> None:
    cm = cost_matrix(url, tid, space, resolution)
    assert cm["coverage"]["fraction"] == 1.0, cm["missing"]
    assert cm["missing"] == []
    assert all(v is not None for row, mask in zip(cm["matrix"], cm["mask"]) for v, m in zip(row, mask) if not m)
    counts = measurement_counts(url, tid)
    assert sorted(counts) == sorted(keys)
    assert set(counts.values()) == {1}, {k: n for k, n in counts.items() if n != 1}


@pytest.mark.slow
def test_daemon_fills_a_squeezenas_queue_sqlite(live_server, tmp_path: Path) -> None:
    from lutcore.spaces import get_space

    tid = target_id()
    reg = register_space(live_server.url, live_server.admin_token, tid, "squeezenas-small", "64x128")
    keys = sorted(get_space("squeezenas-small", "64x128").unique_ops())
    assert reg["enqueued"] == len(keys)
    token = live_server.agent_token(NAME)
    code = cli.main(agent_argv(live_server.url, token, tmp_path / "spool", "--exit-when-idle", "--claim", "16"))
    assert code == cli.EXIT_OK
    assert_complete(live_server.url, tid, keys, "squeezenas-small", "64x128")
    q = queue(live_server.url)
    assert (q["queued"], q["claimed"], q["done"]) == (0, 0, len(keys))


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["pytorch-cpu", "onnxruntime"])
def test_daemon_fills_the_queue_postgres(live_server_pg, tmp_path: Path, backend: str) -> None:
    srv = live_server_pg
    tid = target_id(backend)
    assert register_space(srv.url, srv.admin_token, tid)["enqueued"] == len(tiny_keys())
    code = cli.main(agent_argv(srv.url, srv.agent_token(NAME), tmp_path / "spool", "--exit-when-idle",
                               backend=backend))
    assert code == cli.EXIT_OK
    assert_complete(srv.url, tid, tiny_keys())


def test_daemon_onnxruntime_sqlite(live_server, tmp_path: Path) -> None:
    tid = target_id("onnxruntime")
    register_space(live_server.url, live_server.admin_token, tid)
    code = cli.main(agent_argv(live_server.url, live_server.agent_token(NAME), tmp_path / "spool",
                               "--exit-when-idle", backend="onnxruntime"))
    assert code == cli.EXIT_OK
    assert_complete(live_server.url, tid, tiny_keys())


def test_server_outage_mid_run_every_measurement_arrives_once(live_server, tmp_path: Path) -> None:
    """Posts fail (503) during the run: results wait on disk; a later run delivers them once,
    even though the first delivery's answer is lost and the batch is posted a second time."""
    tid = target_id()
    register_space(live_server.url, live_server.admin_token, tid)
    token = live_server.agent_token(NAME)
    spool = tmp_path / "spool"
    with FlakyProxy(live_server.url) as proxy:
        proxy.fail_paths.add("/measurements")
        code = cli.main(agent_argv(proxy.url, token, spool, "--exit-when-idle", "--claim", "4"))
        assert code == cli.EXIT_PENDING
        assert measurement_counts(live_server.url, tid) == {}
        assert len(list((spool / "pending").glob("*.json"))) == 2  # 6 ops in claims of 4 and 2
        assert proxy.forwarded["POST /api/v1/measurements"] == 0
        flush = ["flush", "--spool", str(spool), "--token", token, "--retries", "0", "-q"]
        assert cli.main(flush + ["--server", dead_url()]) == cli.EXIT_PENDING
        assert len(list((spool / "pending").glob("*.json"))) == 2

        proxy.fail_paths.clear()
        proxy.lose_answers, proxy.lose_path = 1, "/measurements"  # stored, but the answer never arrives
        code = cli.main(agent_argv(proxy.url, token, spool, "--exit-when-idle"))
        assert code == cli.EXIT_OK
        assert proxy.forwarded["POST /api/v1/measurements"] == 3  # one batch was posted twice
    assert list((spool / "pending").glob("*.json")) == []
    assert_complete(live_server.url, tid, tiny_keys())
    assert queue(live_server.url)["done"] == len(tiny_keys())


@pytest.mark.slow
def test_server_killed_and_restarted_mid_run(start_server, tmp_path: Path) -> None:
    """A real server process dies mid-run and a new one starts on the same database."""
    srv = start_server()
    tid = target_id()
    register_space(srv.url, srv.admin_token, tid)
    token = srv.agent_token(NAME)
    with FlakyProxy(srv.url) as proxy:  # a stable address for the agent across the restart
        # A short lease: a claim whose answer is lost in the crash strands its jobs only that long.
        proc = _spawn_agent(proxy.url, token, tmp_path / "spool", *SLOW, "--retries", "2", "--lease", "5")
        try:
            _wait_for(lambda: queue(srv.url)["done"] >= 2, what="the first claim to be posted")
            srv.stop()
            time.sleep(1.5)  # the agent keeps timing; its posts and heartbeats fail meanwhile
            srv2 = start_server(srv.db_url)
            proxy.upstream = srv2.url
            try:
                _wait_for(lambda: queue(srv2.url)["done"] == len(tiny_keys()), timeout=60, what="all jobs done")
            finally:
                proc.send_signal(signal.SIGTERM)
                out, _ = proc.communicate(timeout=60)
                print(out)  # shown by pytest when the test fails
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == cli.EXIT_OK, out
    assert_complete(srv2.url, tid, tiny_keys())
    assert list((tmp_path / "spool" / "pending").glob("*.json")) == []


def test_dead_server_at_start_exits_with_pending_code(tmp_path: Path, capsys) -> None:
    code = cli.main(agent_argv(dead_url(), "tok", tmp_path / "spool", "--exit-when-idle"))
    assert code == cli.EXIT_ERROR  # nothing measured, nothing pending: the server was never reached
    err = capsys.readouterr().err
    assert "cannot reach the server" in err


def test_bad_token_gives_a_clear_message_and_exit_code(live_server, tmp_path: Path, capsys) -> None:
    register_space(live_server.url, live_server.admin_token, target_id())
    code = cli.main(agent_argv(live_server.url, "lut_not_a_token", tmp_path / "spool", "--exit-when-idle"))
    assert code == cli.EXIT_AUTH
    err = capsys.readouterr().err
    assert "401 unauthorized" in err and "LUT_TOKEN" in err
    # A valid token for another board: 403, and the message points at --name.
    other = live_server.agent_token("box-2")
    code = cli.main(agent_argv(live_server.url, other, tmp_path / "spool", "--exit-when-idle"))
    assert code == cli.EXIT_AUTH
    err = capsys.readouterr().err
    assert "403 forbidden" in err and "--name" in err
    assert queue(live_server.url)["claimed"] == 0


def _spawn_agent(url: str, token: str, spool: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "profiler_agent.cli"] + agent_argv(url, token, spool, *extra)
    argv.remove("-q")
    return subprocess.Popen(argv, cwd=str(REPO), env=server_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for(pred, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# Slow enough per op (0.3 s) that a signal lands mid-claim.
SLOW = ["--ci", "0.0001", "--max-time-per-op", "0.3", "--claim", "2", "--canary-every", "0"]


@pytest.mark.slow
@pytest.mark.parametrize("grace", ["0", "60"])
def test_sigterm_mid_run_releases_or_finishes_then_flushes(live_server, tmp_path: Path, grace: str) -> None:
    tid = target_id()
    register_space(live_server.url, live_server.admin_token, tid)
    token = live_server.agent_token(NAME)
    spool = tmp_path / "spool"
    proc = _spawn_agent(live_server.url, token, spool, *SLOW, "--term-grace", grace)
    try:
        _wait_for(lambda: queue(live_server.url)["done"] >= 2, what="the first claim to be posted")
        _wait_for(lambda: queue(live_server.url)["claimed"] > 0, what="the second claim")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == cli.EXIT_OK, out
    q = queue(live_server.url)
    assert q["claimed"] == 0, (q, out)
    counts = measurement_counts(live_server.url, tid)
    assert len(counts) == q["done"] and set(counts.values()) == {1}
    assert list((spool / "pending").glob("*.json")) == []
    if grace == "0":
        assert "back to the queue" in out and q["queued"] > 0
    else:
        assert "back to the queue" not in out and q["done"] >= 4
    # A second agent finishes what is left; nothing is measured twice.
    assert cli.main(agent_argv(live_server.url, token, tmp_path / "spool2", "--exit-when-idle")) == cli.EXIT_OK
    assert_complete(live_server.url, tid, tiny_keys())


@pytest.mark.slow
def test_killed_agent_leases_expire_and_a_second_agent_finishes(clocked_server, tmp_path: Path) -> None:
    """The server runs on a clock the test moves: the leases expire when it says so, not after a sleep."""
    srv = clocked_server
    tid = target_id()
    register_space(srv.url, srv.admin_token, tid)
    token = srv.agent_token(NAME)
    proc = _spawn_agent(srv.url, token, tmp_path / "spool", *SLOW, "--lease", "600")
    try:
        _wait_for(lambda: queue(srv.url)["done"] >= 2 and queue(srv.url)["claimed"] > 0,
                  what="a claim in progress after the first was posted")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert queue(srv.url)["claimed"] > 0  # the killed agent's leases are still held...
    srv.clock.advance(601)  # ...until they expire
    assert cli.main(agent_argv(srv.url, token, tmp_path / "spool2", "--exit-when-idle")) == cli.EXIT_OK
    assert_complete(srv.url, tid, tiny_keys())
    q = queue(srv.url)
    assert (q["claimed"], q["queued"]) == (0, 0)


def test_heartbeats_keep_leases_alive_past_their_length(live_server, tmp_path: Path, capsys) -> None:
    """Ops slower than the lease: without heartbeats the server would hand them to another agent.

    The one test of the lease path on the real clock end to end (the others move a fake one), so its
    margins are generous: a 6 s lease, heartbeats every 2 s (a beat may come 4 s late on a loaded CI
    machine), six ops of 1.5 s claimed at once (9 s, half as long again as the lease)."""
    tid = target_id()
    register_space(live_server.url, live_server.admin_token, tid)
    token = live_server.agent_token(NAME)
    with FlakyProxy(live_server.url) as proxy:
        code = cli.main(agent_argv(proxy.url, token, tmp_path / "spool", "--exit-when-idle", "--lease", "6",
                                   "--claim", "6", "--max-time-per-op", "1.5", "--ci", "0.0001"))
        beats = proxy.forwarded["POST /api/v1/jobs/heartbeat"]
    assert code == cli.EXIT_OK
    assert beats >= 3
    assert "lease lost" not in capsys.readouterr().err
    assert_complete(live_server.url, tid, tiny_keys())
    r = httpx.get(live_server.api + "/status", timeout=30).json()
    assert r["parked"] == [] and r["queue"]["done"] == len(tiny_keys())


def test_an_op_that_cannot_be_timed_is_failed_then_parked(live_server, tmp_path: Path) -> None:
    """One op fails on the device (as a TensorRT build can): its job is failed and, after the
    server's max attempts, parked with the error; every other op is measured."""
    bad = tiny_keys()[2]

    class FailsOnOneOp(TorchCPUBackend):  # stands in for a device-side build failure
        def time_op(self, spec, protocol):
            if spec.key == bad:
                raise RuntimeError("engine build failed: out of workspace")
            return super().time_op(spec, protocol)

    tid = target_id()
    register_space(live_server.url, live_server.admin_token, tid)
    backend = FailsOnOneOp(threads=1)
    session = ProfileSession(backend, TimingProtocol(ci=0.5, max_time_s=0.02, min_samples=3, max_warmup_s=0.01,
                                                     warmup_s=0.01), canary_every=0)
    with LutApi(live_server.url, live_server.agent_token(NAME), retries=1) as api:
        agent = Agent(api, session, backend.target("cpu-test"), {}, Spool(tmp_path / "spool"),
                      AgentConfig(device_class="cpu-test", name=NAME, exit_when_idle=True, poll_s=0.1))
        assert agent.run() == cli.EXIT_OK
    assert agent.stats.failed == 3 and agent.stats.measured == len(tiny_keys()) - 1
    status = httpx.get(live_server.api + "/status", timeout=30).json()
    assert [(p["key"], p["attempts"]) for p in status["parked"]] == [(bad, 3)]
    assert "out of workspace" in status["parked"][0]["error"]
    counts = measurement_counts(live_server.url, tid)
    assert sorted(counts) == sorted(set(tiny_keys()) - {bad}) and set(counts.values()) == {1}
