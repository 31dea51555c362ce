"""Server test fixtures: an in-process app (real database, HTTP via TestClient) and tokens."""

from __future__ import annotations

from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from lut_server.app import create_app
from lut_server.clock import Clock, system_clock
from lut_server.config import Settings
from tests.clocked_server import FakeClock
from tests.server.helpers import ADMIN_SECRET, DEVICE, DEVICE_CLASS


class Api:
    """TestClient with the admin token and an agent token for DEVICE at hand."""

    def __init__(self, client: TestClient, db_url: str) -> None:
        self.c = client
        self.db_url = db_url
        self.admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
        self.agent = self.token("agent", DEVICE, DEVICE_CLASS)

    def token(self, role: str, device: str | None = None, device_class: str | None = None) -> dict:
        if role == "agent" and device_class is None:
            device_class = DEVICE_CLASS
        r = self.c.post("/api/v1/tokens", json={"role": role, "device": device, "device_class": device_class},
                        headers=self.admin)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def post(self, path: str, body: object, headers: dict | None = None, expect: int = 200) -> dict:
        r = self.c.post("/api/v1" + path, json=body, headers=headers if headers is not None else self.agent)
        assert r.status_code == expect, r.text
        return r.json()

    def get(self, path: str, expect: int = 200, **params: str) -> dict:
        r = self.c.get("/api/v1" + path, params=params)
        assert r.status_code == expect, r.text
        return r.json()


def _api(db_url: str, clock: Clock = system_clock) -> Iterator[Api]:
    app = create_app(Settings(db_url=db_url, admin_token=ADMIN_SECRET), clock=clock)
    with TestClient(app) as client:
        yield Api(client, db_url)
    app.state.db.dispose()


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from _api(db_url)


@pytest.fixture
def clocked_api(db_url: str, fake_clock: FakeClock) -> Iterator[Api]:
    """``api`` on a clock the test moves (``fake_clock.advance``): leases expire without sleeping."""
    yield from _api(db_url, fake_clock)
