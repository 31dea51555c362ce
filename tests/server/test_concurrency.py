"""Concurrent claimers over real HTTP: every job is handed out exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import List

import httpx
import pytest

from tests.server.helpers import TARGET, seed_jobs


def _drain(server, n_jobs: int, n_claimers: int, per_claim: int) -> List[int]:
    seed_jobs(server.db_url, n_jobs)
    tokens = [server.agent_token(f"board-{i:02d}") for i in range(n_claimers)]
    got: List[List[int]] = [[] for _ in range(n_claimers)]
    errors: List[str] = []
    start = threading.Barrier(n_claimers)

    def worker(i: int) -> None:
        with httpx.Client(base_url=server.api, headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=60) as c:
            start.wait()
            while True:
                r = c.post("/jobs/claim", json={"target": TARGET, "n": per_claim, "lease_s": 600})
                if r.status_code != 200:
                    errors.append(r.text)
                    return
                jobs = r.json()["jobs"]
                if not jobs:
                    return
                got[i].extend(j["id"] for j in jobs)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [j for g in got for j in g]
    dup = [j for j, n in Counter(ids).items() if n > 1]
    assert dup == [], f"jobs claimed more than once: {dup[:10]}"
    assert len(ids) == n_jobs
    assert sum(1 for g in got if g) > 1  # the claimers really competed
    return ids


@pytest.mark.postgres
@pytest.mark.slow
def test_16_claimers_draw_1000_jobs_exactly_once_postgres(live_server_pg) -> None:
    _drain(live_server_pg, 1000, 16, 7)


def test_claimers_draw_jobs_exactly_once_sqlite(live_server) -> None:
    _drain(live_server, 300, 6, 5)


def _post_all(servers, bodies, tokens) -> list:
    """Post bodies[i] with tokens[i] to servers[i % 2], all released at once; the responses."""
    out: list = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def worker(i: int) -> None:
        srv = servers[i % len(servers)]
        with httpx.Client(base_url=srv.api, headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=120) as c:
            start.wait()
            out[i] = c.post(bodies[i][0], json=bodies[i][1])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.mark.postgres
def test_12_boards_two_servers_one_entry_postgres(start_server, pg_db_url) -> None:
    """12 boards post the same ops at once through two server processes: every run counts, exactly."""
    from tests.server.helpers import batch, conv, item

    servers = [start_server(pg_db_url), start_server(pg_db_url)]
    n = 12
    specs = [conv(c) for c in (16, 24, 32, 40)]
    tokens = [servers[0].agent_token(f"board-{i:02d}", "xavier") for i in range(n)]
    bodies = [("/measurements", batch([item(s, 1.0 + i) for s in specs], device=f"board-{i:02d}"))
              for i in range(n)]
    resp = _post_all(servers, bodies, tokens)
    assert [r.status_code for r in resp] == [200] * n, [r.text for r in resp if r.status_code != 200]
    assert [r.json()["accepted"] for r in resp] == [len(specs)] * n
    got = httpx.post(servers[1].api + "/lookup", json={"target": TARGET, "keys": [s.key for s in specs]}).json()
    for s in specs:
        e = got["values"][s.key]
        assert e["n_runs"] == n and e["n_devices"] == n, e
        assert e["value_ms"] == 6.5  # median over 12 boards of 1.0 .. 12.0
    versions = sorted(r.json()["lut_version"] for r in resp)
    assert versions == list(range(1, n + 1))  # every ingest bumped the version once, none lost


@pytest.mark.postgres
def test_concurrent_registration_one_open_job_per_op_postgres(start_server, pg_db_url) -> None:
    servers = [start_server(pg_db_url), start_server(pg_db_url)]
    n = 12
    tokens = [servers[0].search_token() for _ in range(n)]
    body = {"space": "squeezenas-small", "resolution": "64x128", "target": TARGET}
    resp = _post_all(servers, [("/spaces", body)] * n, tokens)
    assert [r.status_code for r in resp] == [200] * n, [r.text for r in resp if r.status_code != 200]
    unique = resp[0].json()["unique_ops"]
    assert sum(r.json()["enqueued"] for r in resp) == unique  # RETURNING counts: no double counting
    status = httpx.get(servers[0].api + "/status").json()
    assert status["queue"]["queued"] == unique


def test_concurrent_registration_sqlite(live_server) -> None:
    n = 6
    tokens = [live_server.search_token() for _ in range(n)]
    body = {"space": "squeezenas-small", "resolution": "64x128", "target": TARGET}
    resp = _post_all([live_server], [("/spaces", body)] * n, tokens)
    assert [r.status_code for r in resp] == [200] * n
    unique = resp[0].json()["unique_ops"]
    assert sum(r.json()["enqueued"] for r in resp) == unique
    assert httpx.get(live_server.api + "/status").json()["queue"]["queued"] == unique


def test_transactions_are_retried_on_deadlock_a_bounded_number_of_times(tmp_path) -> None:
    from sqlalchemy import Connection
    from sqlalchemy.exc import OperationalError

    from lut_server.db import MAX_TRIES, Database

    class Deadlock(Exception):
        sqlstate = "40P01"

    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    calls: List[int] = []

    def flaky(conn: Connection) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE ...", {}, Deadlock())
        return "done"

    assert db.transact(flaky) == "done" and len(calls) == 3
    calls.clear()

    def always(conn: Connection) -> None:
        calls.append(1)
        raise OperationalError("UPDATE ...", {}, Deadlock())

    with pytest.raises(OperationalError):
        db.transact(always)
    assert len(calls) == MAX_TRIES
    calls.clear()

    def other(conn: Connection) -> None:
        calls.append(1)
        raise OperationalError("UPDATE ...", {}, ValueError("disk full"))

    with pytest.raises(OperationalError):
        db.transact(other)
    assert len(calls) == 1  # only deadlocks and serialization failures are retried
    db.dispose()


@pytest.mark.postgres
def test_concurrent_validation_requests_make_one_job_postgres(start_server, pg_db_url) -> None:
    servers = [start_server(pg_db_url), start_server(pg_db_url)]
    n = 12
    tokens = [servers[0].search_token() for _ in range(n)]
    body = {"target": "cpu-x86/pytorch-cpu/fp32@threads=1", "space": "squeezenas-small", "resolution": "64x128",
            "archs": "random:3"}
    resp = _post_all(servers, [("/validations/jobs", body)] * n, tokens)
    assert [r.status_code for r in resp] == [200] * n, [r.text for r in resp if r.status_code != 200]
    assert sum(r.json()["created"] for r in resp) == 1
    assert len({r.json()["id"] for r in resp}) == 1
