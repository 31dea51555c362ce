"""The shared live-server fixtures work on both databases (other applications' tests rely on them)."""

from __future__ import annotations

import httpx


def test_live_server_sqlite(live_server) -> None:
    r = httpx.get(live_server.url + "/healthz")
    assert r.status_code == 200 and r.json()["db"] == "sqlite"
    tok = live_server.agent_token("xavier-01")
    r = httpx.post(live_server.api + "/devices", json={"name": "xavier-01", "device_class": "xavier"},
                   headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text


def test_live_server_pg(live_server_pg) -> None:
    r = httpx.get(live_server_pg.url + "/healthz")
    assert r.status_code == 200 and r.json()["db"] == "postgresql"
    assert live_server_pg.agent_token("orin-01").startswith("lut_")


def test_db_url_is_fresh(db_url: str) -> None:
    from sqlalchemy import create_engine, inspect

    from lut_server.db import normalize_url

    eng = create_engine(normalize_url(db_url))
    assert inspect(eng).get_table_names() == []
    eng.dispose()
