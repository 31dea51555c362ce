"""The cost matrix's hot path: answered from the cache within FRESH_S of a check, never past it, never
around the read rule, with the same bytes, ETag and 304s as the route."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from lut_server.api import matrix_fast
from lut_server.app import create_app
from lut_server.config import Settings
from lut_server.matrix_cache import FRESH_S
from lut_server.store import calibrations
from lutcore.spaces import get_space
from tests.server.helpers import ADMIN_SECRET, TARGET, batch, item

BODY = {"space": "squeezenas-small", "resolution": "64x128", "target": TARGET}


def test_request_words_the_fast_path_may_answer():
    assert matrix_fast.alias_of(b'{"space": "s", "target": "t"}') == ("t", "s", None, "median_ms")
    assert matrix_fast.alias_of(b'{"space": "s", "target": "t", "resolution": "8x8", "metric": "p90_ms"}') == (
        "t", "s", "8x8", "p90_ms")
    for bad in (b'{"space": {"layers": []}, "target": "t"}', b'{"space": "s"}', b'{"space": "s", "target": "t", '
                b'"extra": 1}', b"[1]", b"not json", b'{"space": "s", "target": "t", "resolution": 5}'):
        assert matrix_fast.alias_of(bad) is None


def test_hot_path_serves_checked_bytes_then_rechecks(api, monkeypatch):
    first = api.c.post("/api/v1/cost-matrix", json=BODY)
    assert first.status_code == 200 and first.headers["etag"]

    def database_gone(*_a, **_k):
        raise RuntimeError("the route ran")

    monkeypatch.setattr(calibrations, "matrix_version", database_gone)
    hot = api.c.post("/api/v1/cost-matrix", json=BODY)  # within FRESH_S: no route, no database
    assert hot.status_code == 200 and hot.content == first.content and hot.headers["etag"] == first.headers["etag"]
    cond = api.c.post("/api/v1/cost-matrix", json=BODY, headers={"If-None-Match": first.headers["etag"]})
    assert cond.status_code == 304 and cond.content == b""
    time.sleep(FRESH_S + 0.05)
    with pytest.raises(RuntimeError, match="the route ran"):  # past FRESH_S the route checks the version again
        api.c.post("/api/v1/cost-matrix", json=BODY)


def test_a_write_by_another_worker_is_seen_within_the_fresh_window(api):
    other = create_app(Settings(db_url=api.db_url, admin_token=ADMIN_SECRET))  # a second worker, same database
    with TestClient(other) as c2:
        before = api.c.post("/api/v1/cost-matrix", json=BODY)
        op = next(s for s in get_space("squeezenas-small", "64x128").unique_ops().values() if not s.is_identity)
        r = c2.post("/api/v1/measurements", json=batch([item(op, 2.5)]), headers=api.agent)
        assert r.status_code == 200, r.text
        time.sleep(FRESH_S + 0.05)
        after = api.c.post("/api/v1/cost-matrix", json=BODY)
        assert after.headers["etag"] != before.headers["etag"]
        assert after.json()["coverage"]["measured"] == before.json()["coverage"]["measured"] + 1
    other.state.db.dispose()


def test_no_hot_path_around_the_read_rule(db_url):
    app = create_app(Settings(db_url=db_url, admin_token=ADMIN_SECRET, read_token_required=True))
    with TestClient(app) as c:
        admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
        assert c.post("/api/v1/cost-matrix", json=BODY, headers=admin).status_code == 200
        assert c.post("/api/v1/cost-matrix", json=BODY).status_code == 401  # cached, yet still refused
    app.state.db.dispose()


def test_a_write_answered_here_is_seen_at_once(api):
    before = api.c.post("/api/v1/cost-matrix", json=BODY)
    op = next(s for s in get_space("squeezenas-small", "64x128").unique_ops().values() if not s.is_identity)
    api.post("/measurements", batch([item(op, 2.5)]))
    after = api.c.post("/api/v1/cost-matrix", json=BODY)  # no sleep: this worker took the write
    assert after.headers["etag"] != before.headers["etag"]


def test_past_the_fresh_window_one_caller_rechecks_while_the_others_are_served(monkeypatch):
    from lut_server import matrix_cache
    from lut_server.matrix_cache import STALE_S, MatrixCache

    clock = [100.0]
    monkeypatch.setattr(matrix_cache.time, "monotonic", lambda: clock[0])
    cache = MatrixCache()
    alias = ("t", "s", None, "median_ms")
    cache.put(("t", "s", "d", "8x8", "median_ms"), (1, None), b"{}", alias)
    assert cache.recent(alias) is not None
    clock[0] += FRESH_S + 0.01
    assert cache.recent(alias) is None  # this caller goes to the route and checks
    assert cache.recent(alias) is not None and cache.recent(alias) is not None  # the others are served meanwhile
    clock[0] += STALE_S
    assert cache.recent(alias) is None  # never past STALE_S
    assert cache.get(("t", "s", "d", "8x8", "median_ms"), (1, None), alias) is not None  # the check came back
    assert cache.recent(alias) is not None
    cache.forget_checks()
    assert cache.recent(alias) is None
