"""Suite-wide fixtures. The live-server fixtures (real uvicorn over HTTP, SQLite and
PostgreSQL databases) live in tests/live_server.py and are shared by every application's tests.
"""

import importlib.util

pytest_plugins = ["tests.live_server", "tests.clocked_server"] if importlib.util.find_spec("tests.live_server") else []


def pytest_collection_modifyitems(items: list) -> None:  # type: ignore[type-arg]
    """Tests marked slow first: scripts/test.sh hands tests out in this order (xdist's ``load``), so the
    long ones start early instead of keeping one worker busy after the others ran out."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: files keep their order
