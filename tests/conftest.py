"""Suite-wide fixtures. The live-server fixtures (real uvicorn over HTTP, SQLite and
PostgreSQL databases) live in tests/live_server.py and are shared by every application's tests.
"""

import importlib.util

pytest_plugins = ["tests.live_server", "tests.clocked_server"] if importlib.util.find_spec("tests.live_server") else []
