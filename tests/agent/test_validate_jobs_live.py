"""Validation as jobs, end to end: `lut register --validate` queues it behind the ops, a real
agent times the ops, then the networks against the server's LUT, posts them naming the job and
refits the calibration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from profiler_agent import cli
from tests.agent.agent_helpers import api, queue, target_id
from tests.agent.test_daemon_live import NAME, agent_argv

SPACE, RES = "squeezenas-small", "64x128"


@pytest.mark.slow
def test_agent_runs_the_validate_job_after_the_ops(live_server, tmp_path: Path) -> None:
    tid = target_id()
    r = subprocess.run([sys.executable, "-m", "lutcore", "register", SPACE, "--target", tid, "-r", RES,
                        "--server", live_server.url, "--token", live_server.admin_token,
                        "--validate", "published,random:3", "--validate-rounds", "1", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    reg = json.loads(r.stdout)
    job = reg["validate_job"]
    assert job["created"] and job["architectures"] == 5 and job["rounds"] == 1
    code = cli.main(agent_argv(live_server.url, live_server.agent_token(NAME), tmp_path / "spool",
                               "--exit-when-idle", "--claim", "64"))
    assert code == cli.EXIT_OK
    q = queue(live_server.url)
    assert (q["queued"], q["claimed"], q["parked"], q["done"]) == (0, 0, 0, reg["enqueued"] + 1)
    params = {"target": tid, "space": SPACE, "resolution": RES}
    got = httpx.get(api(live_server.url) + "/validations", params=params, timeout=30).json()
    archs = sorted(x["arch"] for x in got["results"])
    assert archs == sorted(["squeezenas-mac-small", "squeezenas-lat-small"] + [f"{SPACE}:random:{i}" for i in range(3)])
    for x in got["results"]:
        assert x["predicted_ms"] > 0 and x["measured_ms"] > 0 and len(x["rounds"]) == 1
    assert got["calibration"]["model"] in ("identity", "scale")  # refitted by the agent (3 random archs)
