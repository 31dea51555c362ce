"""Suite-wide fixtures. The live-server fixtures (real uvicorn over HTTP, SQLite and
PostgreSQL databases) live in tests/live_server.py and are shared by every application's tests.
"""

import importlib.util
from pathlib import Path
from typing import Any, List

import pytest

pytest_plugins = ["tests.live_server", "tests.clocked_server"] if importlib.util.find_spec("tests.live_server") else []


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    """Tests marked slow dealt round-robin to the heads of the workers' shares.

    xdist's worksteal gives each worker a contiguous share of the collection (the sizes below) and
    steals from the tails, so a worker keeps the head of its share: every worker then starts on its
    part of the long tests instead of one worker finding one alone at the end."""
    n = int(getattr(config, "workerinput", {}).get("workercount", 0))
    if n < 2:
        return
    slow = [it for it in items if it.get_closest_marker("slow") is not None]
    rest = iter([it for it in items if it.get_closest_marker("slow") is None])
    ordered: List[Any] = []
    left = len(items)
    for w in range(n):
        size = left // (n - w)  # as worksteal splits the pending tests among idle workers
        head = slow[w::n]
        ordered += head + [next(rest) for _ in range(size - len(head))]
        left -= size
    ordered += list(rest)
    items[:] = ordered


@pytest.fixture(autouse=True)
def _own_speed_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and the agent processes it starts) keeps its speed base in its own file, not ~/.cache."""
    monkeypatch.setenv("LUT_SPEED_BASE", str(tmp_path / "speed-base.json"))
