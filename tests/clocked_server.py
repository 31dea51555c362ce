"""Pytest plugin: servers whose clock the test moves, so leases expire when a test says so, not after
a sleep that flakes under load.

Fixtures
- ``fake_clock``: a ``FakeClock`` (seconds since the epoch) that moves only on ``advance(s)``.
- ``clocked_server``: the real app (``create_app(clock=fake_clock)``) over a fresh SQLite file, served
  by uvicorn in a thread on 127.0.0.1, with the ``LiveServer`` interface the agent tests use
  (``url``, ``api``, ``admin_token``, ``agent_token``) and its ``clock``.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests.live_server import START_TIMEOUT_S, LiveServer


class FakeClock:
    """A clock that stands still until ``advance``; starts at the real time so stored times look sane."""

    def __init__(self, start: Optional[float] = None) -> None:
        self.t = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


class InProcessServer(LiveServer):
    """``create_app`` under uvicorn in a daemon thread: the test process holds the clock it runs on."""

    def __init__(self, db_url: str, clock: FakeClock) -> None:  # LiveServer's __init__ (a subprocess) is not run
        import uvicorn

        from lut_server.app import create_app
        from lut_server.config import Settings

        self.db_url = db_url
        self.clock = clock
        self.admin_token = "lut_admin_" + secrets.token_urlsafe(18)
        self.read_token_required = False
        self.app = create_app(Settings(db_url=db_url, admin_token=self.admin_token, access_log=False), clock=clock)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self.url + "/api/v1"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.02)

    def log(self) -> str:
        return ""

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
        self.app.state.db.dispose()

    def __repr__(self) -> str:
        return f"InProcessServer({self.url}, db={self.db_url})"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked_server(tmp_path: Path, fake_clock: FakeClock) -> Iterator[InProcessServer]:
    srv = InProcessServer(f"sqlite:///{tmp_path / 'lut-clocked.db'}", fake_clock)
    yield srv
    srv.stop()
