"""The daemon's view of the whole queue: a progress line per claim, and ``--exit-when-idle`` waiting for
jobs other agents still hold instead of exiting with the LUT short."""

from __future__ import annotations

from pathlib import Path

from profiler_agent import cli
from profiler_agent.api import LutApi
from tests.agent.agent_helpers import queue, register_space, target_id, tiny_keys
from tests.agent.test_daemon_live import NAME, agent_argv, assert_complete


def test_exit_when_idle_waits_for_jobs_leased_to_another_agent(live_server, tmp_path: Path, capsys) -> None:
    tid = target_id()
    register_space(live_server.url, live_server.admin_token, tid)
    with LutApi(live_server.url, live_server.agent_token("box-2")) as other:
        other.register_device("box-2", "cpu-test", {})
        # then it goes quiet: no heartbeat, no result; the lease outlasts the agent's start on a loaded machine
        held = other.claim(tid, 2, lease_s=6.0)
    assert len(held) == 2
    code = cli.main(agent_argv(live_server.url, live_server.agent_token(NAME), tmp_path / "spool",
                               "--exit-when-idle", "--log-level", "info"))
    err = capsys.readouterr().err
    assert code == cli.EXIT_OK, err
    assert "2 job(s) are leased to other agents; waiting" in err
    assert "queue for" in err and "no agent holds a job of it; exiting" in err
    assert_complete(live_server.url, tid, tiny_keys())  # the held jobs were taken over once their leases ended
    q = queue(live_server.url)
    assert (q["claimed"], q["queued"], q["done"]) == (0, 0, len(tiny_keys()))
    n = len(tiny_keys())
    progress = [line for line in err.splitlines() if f"progress {tid} [" in line]
    assert progress[0].split(f"{tid} ")[1].count(f"0/{n}") == 1  # where the target stood at the start
    assert f"{n}/{n} 100%" in progress[-1] and "(0 queued, 0 leased)" in progress[-1]
    assert len(progress) >= 3  # the start, then one per claim
