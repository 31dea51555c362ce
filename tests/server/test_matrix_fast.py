"""The cost matrix's hot path: answered from the cache within STALE_S of a version check (the worker's
refresher checks every FRESH_S, off the request path), never past it, never around the read rule, with
the same bytes, ETag and 304s as the route."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from lut_server.api import matrix_fast
from lut_server.app import create_app
from lut_server.config import Settings
from lut_server.matrix_cache import STALE_S, MatrixCache
from lut_server.matrix_refresh import MatrixRefresher
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
    hot = api.c.post("/api/v1/cost-matrix", json=BODY)  # just checked: no route, no database
    assert hot.status_code == 200 and hot.content == first.content and hot.headers["etag"] == first.headers["etag"]
    cond = api.c.post("/api/v1/cost-matrix", json=BODY, headers={"If-None-Match": first.headers["etag"]})
    assert cond.status_code == 304 and cond.content == b""
    time.sleep(STALE_S + 0.1)  # the refresher cannot check either: past STALE_S the route checks itself
    with pytest.raises(RuntimeError, match="the route ran"):
        api.c.post("/api/v1/cost-matrix", json=BODY)


def test_a_write_by_another_worker_is_seen_within_the_stale_bound(api):
    other = create_app(Settings(db_url=api.db_url, admin_token=ADMIN_SECRET))  # a second worker, same database
    with TestClient(other) as c2:
        before = api.c.post("/api/v1/cost-matrix", json=BODY)
        op = next(s for s in get_space("squeezenas-small", "64x128").unique_ops().values() if not s.is_identity)
        r = c2.post("/api/v1/measurements", json=batch([item(op, 2.5)]), headers=api.agent)
        assert r.status_code == 200, r.text
        time.sleep(STALE_S + 0.05)
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


def test_entries_age_out_unless_a_check_confirms_them(monkeypatch):
    from lut_server import matrix_cache

    clock = [100.0]
    monkeypatch.setattr(matrix_cache.time, "monotonic", lambda: clock[0])
    cache = MatrixCache()
    alias = ("t", "s", None, "median_ms")
    key = ("t", "s", "d", "8x8", "median_ms")
    cache.put(key, (1, None), b"{}", alias)
    assert cache.recent(alias) is not None
    clock[0] += STALE_S + 0.01
    assert cache.recent(alias) is None  # never past STALE_S
    cache.confirm(key, (1, None), clock[0])
    assert cache.recent(alias) is not None  # a check of the same version keeps it
    cache.forget_checks()
    assert cache.recent(alias) is None  # a write answered here: checked again first
    cache.confirm(key, (2, None), clock[0])  # the database moved on: the bytes are dropped
    assert cache.recent(alias) is None and cache.versions() == []


def test_the_refresher_keeps_checked_bytes_hot_and_drops_moved_ones(api):
    """Off the request path: the refresher's checks keep a matrix servable past STALE_S, and a write
    made through another worker drops it at the next check."""
    first = api.c.post("/api/v1/cost-matrix", json=BODY)
    cache: MatrixCache = api.c.app.state.matrix_cache
    alias = (TARGET, BODY["space"], BODY["resolution"], "median_ms")
    time.sleep(STALE_S + 0.3)
    assert cache.recent(alias) == (first.content, first.headers["etag"])  # kept hot by the refresher
    other = create_app(Settings(db_url=api.db_url, admin_token=ADMIN_SECRET))
    with TestClient(other) as c2:
        op = next(s for s in get_space("squeezenas-small", "64x128").unique_ops().values() if not s.is_identity)
        assert c2.post("/api/v1/measurements", json=batch([item(op, 2.5)]), headers=api.agent).status_code == 200
    other.state.db.dispose()
    refresher = MatrixRefresher(cache, api.c.app.state.db)
    refresher.check_once()  # the app's own refresher (every FRESH_S) may have dropped it first: either will
    assert cache.recent(alias) is None  # its version moved: the next request renders it again
    again = api.c.post("/api/v1/cost-matrix", json=BODY)
    assert again.headers["etag"] != first.headers["etag"]


def test_concurrent_misses_render_once():
    import threading

    cache = MatrixCache()
    key = ("t", "s", "d", "8x8", "median_ms")
    renders = []
    go = threading.Event()

    def render() -> bytes:
        renders.append(1)
        go.wait(1)  # the others arrive while this render is under way
        return b'{"m": 1}'

    got: list = []
    threads = [threading.Thread(target=lambda: got.append(cache.fill(key, (1, None), None, render))) for _ in range(8)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()
    assert len(renders) == 1 and len(got) == 8 and len({g[1] for g in got}) == 1
    assert cache.fill(key, (2, None), None, lambda: b'{"m": 2}')[0] == b'{"m": 2}'  # a new version renders again
