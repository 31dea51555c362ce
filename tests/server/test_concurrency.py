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
