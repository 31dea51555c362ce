"""The lease keeper: a job is reported lost only while the agent still holds it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, cast

import pytest

from lutcore.records import Target
from profiler_agent.api import LutApi
from profiler_agent.daemon import Agent, AgentConfig
from profiler_agent.leases import LeaseKeeper
from profiler_agent.spool import Spool


class _Api:
    """Answers heartbeats: ``lost`` jobs are reported lost; ``during`` runs while the beat is in flight."""

    def __init__(self, lost: List[int]) -> None:
        self.lost = lost
        self.during = lambda: None
        self.calls: List[List[int]] = []

    def heartbeat(self, ids: List[int], lease_s: float) -> Dict[str, Any]:
        self.calls.append(list(ids))
        self.during()
        return {"extended": [i for i in ids if i not in self.lost], "lost": [i for i in ids if i in self.lost]}


def test_a_job_taken_over_is_reported_lost_once(caplog: pytest.LogCaptureFixture) -> None:
    api = _Api(lost=[2])
    keeper = LeaseKeeper(api, lease_s=6)  # type: ignore[arg-type]
    keeper.track([1, 2, 3])
    with caplog.at_level(logging.WARNING, logger="profiler_agent"):
        keeper.beat()
        keeper.beat()
    assert keeper.lost == {2} and api.calls == [[1, 2, 3], [1, 2, 3]]
    assert [r.getMessage() for r in caplog.records].count(
        "lease lost for job(s) [2] (expired or taken over); their results are still posted") == 1


def test_jobs_completed_while_a_beat_is_in_flight_are_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    api = _Api(lost=[1, 2, 3])  # the server has them done by the time the beat arrives
    keeper = LeaseKeeper(api, lease_s=6)  # type: ignore[arg-type]
    keeper.track([1, 2, 3])
    api.during = lambda: keeper.untrack([1, 2, 3])  # the agent posts their results meanwhile
    with caplog.at_level(logging.WARNING, logger="profiler_agent"):
        keeper.beat()
    assert keeper.lost == set() and api.calls == [[1, 2, 3]]
    assert not [r for r in caplog.records if "lease lost" in r.getMessage()]


def test_the_agent_stops_heartbeating_jobs_before_posting_their_results(tmp_path: Path) -> None:
    target = Target(device="cpu-test", backend="pytorch-cpu", precision="fp32", batch=1)  # unused: nothing is timed
    agent = Agent(cast(LutApi, _Api(lost=[])), object(), target, {}, Spool(tmp_path),
                  AgentConfig(device_class="cpu-test", name="b"))
    tracked_at_post: List[List[int]] = []
    agent._measure = lambda runnable: []  # type: ignore[method-assign]
    agent._fail_unanswered = lambda runnable, done: None  # type: ignore[method-assign]
    agent._flush = lambda: tracked_at_post.append(agent.leases.tracked)  # type: ignore[method-assign,assignment,return-value]
    jobs = [(type("Job", (), {"id": i})(), None) for i in (7, 8)]
    agent._process_ops(jobs)  # type: ignore[arg-type]
    assert tracked_at_post == [[]] and agent.leases.tracked == []
