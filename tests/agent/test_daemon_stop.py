"""The daemon stops through the event its caller gives it; it leaves the API client as it was given."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

from lutcore.records import Target
from profiler_agent import cli
from profiler_agent.api import LutApi
from profiler_agent.cli import components
from profiler_agent.daemon import Agent, AgentConfig
from profiler_agent.spool import Spool


class _Api:
    def __init__(self) -> None:
        self.sleep = "untouched"


def test_the_agent_uses_the_stop_event_it_is_given_and_patches_nothing(tmp_path: Path) -> None:
    stop, api = threading.Event(), _Api()
    target = Target(device="cpu-test", backend="pytorch-cpu", precision="fp32", batch=1)  # unused: nothing runs
    agent = Agent(cast(LutApi, api), object(), target, {}, Spool(tmp_path),
                  AgentConfig(device_class="cpu-test", name="b"), stop=stop)
    assert api.sleep == "untouched" and vars(api) == {"sleep": "untouched"}
    assert not stop.is_set()
    agent.request_stop("SIGTERM")
    assert stop.is_set() and agent.stopping


def test_the_cli_gives_the_api_client_a_wait_that_a_stop_ends() -> None:
    stop = threading.Event()
    args = cli.build_parser().parse_args(["run", "--server", "http://127.0.0.1:9", "--token", "t"])

    def wait(seconds: float) -> None:
        stop.wait(seconds)

    api = components.api_client(args, sleep=wait)
    try:
        assert api.sleep is wait
        stop.set()
        done = threading.Event()

        def sleep_then_done() -> None:
            api.sleep(60.0)
            done.set()

        threading.Thread(target=sleep_then_done, daemon=True).start()
        assert done.wait(5.0)  # a retry wait of 60 s ends at once after a stop request
    finally:
        api.close()
