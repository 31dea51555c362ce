"""LUT server throughput on this machine: ingest, cost matrix, lookup and claim, against real HTTP.

    eval "$(.ci/start-postgres.sh)"; python bench/bench_server.py [--db URL] [--workers N]

Prints figures (no pass/fail). Goals from issue 3: ingest >= 2,000 measurements/s with 8 posting
agents; p99 of the squeezenas-xlarge (22 x 13) cost matrix <= 25 ms under 32 concurrent readers.
The same matrix built from a local export file (search_client's offline path) is timed for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lutcore.spaces import get_space  # noqa: E402

TARGET = {"device": "xavier", "backend": "tensorrt", "precision": "fp16", "batch": 1, "settings": {}}
TID = "xavier/tensorrt/fp16"


def pg_url() -> str:
    if os.environ.get("LUT_TEST_PG_URL"):
        base = os.environ["LUT_TEST_PG_URL"]
    else:
        out = subprocess.run(["bash", str(REPO / ".ci/start-postgres.sh")], capture_output=True, text=True, check=True)
        base = out.stdout.strip().split("=", 1)[1]
    import psycopg

    name = "lut_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def start(db: str, workers: int) -> tuple:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    admin = "bench_" + secrets.token_hex(8)
    env = dict(os.environ, LUT_ADMIN_TOKEN=admin, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "lutcore", "serve", "--db", db, "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=str(REPO))
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url, admin


def token(url: str, admin: str, device: str) -> str:
    r = httpx.post(url + "/api/v1/tokens", json={"role": "agent", "device": device},
                   headers={"Authorization": f"Bearer {admin}"})
    r.raise_for_status()
    return r.json()["token"]


def stats(m: float) -> Dict[str, Any]:
    return {"median_ms": m, "mean_ms": m, "std_ms": 0.01 * m, "min_ms": 0.9 * m, "p10_ms": 0.95 * m,
            "p90_ms": 1.1 * m, "n": 100}


def concurrently(n: int, fn: Callable[[int], List[float]]) -> List[float]:
    out: List[List[float]] = [[] for _ in range(n)]
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        out[i] = fn(i)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return [x for o in out for x in o]


def pct(xs: List[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="database URL (default: a fresh PostgreSQL database)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--readers", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8.0, help="duration of each read phase")
    args = ap.parse_args()
    db = args.db or pg_url()
    proc, url, admin = start(db, args.workers)
    api = url + "/api/v1"
    print(f"server {url}, db {db.split('@')[-1]}, workers {args.workers}, {os.cpu_count()} cpus")
    try:
        sp = get_space("squeezenas-xlarge")
        ops = list(sp.unique_ops().values())
        # -- ingest: 8 agents, each posting its own runs of every op of the space
        toks = [token(url, admin, f"board-{i}") for i in range(args.agents)]
        batches_per_agent = 3

        def post(i: int) -> List[float]:
            lat = []
            with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {toks[i]}"}, timeout=120) as c:
                for b in range(batches_per_agent):
                    items = [{"op": {"key": o.key, "spec": o.to_dict()}, "stats": stats(0.1 + 0.001 * (k % 97))}
                             for k, o in enumerate(ops)]
                    body = {"run_id": f"bench-{i}-{b}-{uuid.uuid4().hex[:8]}", "target": TARGET,
                            "device_name": f"board-{i}", "items": items}
                    t0 = time.perf_counter()
                    r = c.post("/measurements", json=body)
                    lat.append(time.perf_counter() - t0)
                    assert r.status_code == 200 and r.json()["accepted"] == len(items), r.text[:300]
            return lat

        t0 = time.perf_counter()
        lat = concurrently(args.agents, post)
        dt = time.perf_counter() - t0
        n = args.agents * batches_per_agent * len(ops)
        print(f"ingest: {n} measurements in {dt:.2f}s = {n / dt:,.0f} measurements/s "
              f"({args.agents} agents, batches of {len(ops)}, p50 batch {1e3 * statistics.median(lat):.0f} ms)")

        # -- cost matrix under concurrent readers
        body = {"space": "squeezenas-xlarge", "target": TID}
        cm = httpx.post(api + "/cost-matrix", json=body).json()
        assert cm["coverage"]["fraction"] == 1.0, cm["coverage"]

        def reader(path: str, payload: Dict[str, Any]) -> Callable[[int], List[float]]:
            def go(_i: int) -> List[float]:
                out = []
                end = time.perf_counter() + args.seconds
                with httpx.Client(base_url=api, timeout=60) as c:
                    while time.perf_counter() < end:
                        t0 = time.perf_counter()
                        r = c.post(path, json=payload)
                        out.append(time.perf_counter() - t0)
                        assert r.status_code == 200, (r.status_code, r.text[:300])
                return out
            return go

        for readers in (1, args.readers):
            lat = concurrently(readers, reader("/cost-matrix", body))
            print(f"cost matrix squeezenas-xlarge {cm['layers']}x{len(cm['candidates'])} at {cm['resolution']}, "
                  f"{readers} readers: p50 {1e3 * pct(lat, 0.5):.1f} ms, p99 {1e3 * pct(lat, 0.99):.1f} ms, "
                  f"{len(lat) / args.seconds:,.0f} req/s")

        keys = [o.key for o in ops][:100]
        lat = concurrently(8, reader("/lookup", {"target": TID, "keys": keys}))
        print(f"lookup of {len(keys)} keys, 8 readers: p50 {1e3 * pct(lat, 0.5):.1f} ms, "
              f"p99 {1e3 * pct(lat, 0.99):.1f} ms, {len(lat) / args.seconds:,.0f} lookups/s "
              f"= {len(lat) * len(keys) / args.seconds:,.0f} keys/s")

        # -- the same matrix from a local JSON export
        doc = httpx.get(api + "/export", params={"target": TID}, timeout=120).json()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(doc, f)
        t0 = time.perf_counter()
        with open(f.name) as fh:
            table = {e["key"]: e["value_ms"] for e in json.load(fh)["targets"][0]["entries"]}
        load = time.perf_counter() - t0
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            _m = [[table.get(k) if k else None for k in row] for row in sp.key_matrix()]
            times.append(time.perf_counter() - t0)
        os.unlink(f.name)
        print(f"local JSON file ({len(table)} entries): load {1e3 * load:.1f} ms once, matrix "
              f"p50 {1e3 * pct(times, 0.5):.2f} ms, p99 {1e3 * pct(times, 0.99):.2f} ms")

        # -- claims: seed jobs by registering the space at other resolutions, then drain with 8 claimers
        total = 0
        for res in ("256x512", "512x1024", "128x256"):
            total += httpx.post(api + "/spaces", json={"space": "squeezenas-xlarge", "resolution": res,
                                                       "target": TID}, timeout=120).json()["enqueued"]

        def claimer(i: int) -> List[float]:
            got = []
            with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {toks[i]}"}, timeout=60) as c:
                while True:
                    r = c.post("/jobs/claim", json={"target": TID, "n": 4, "lease_s": 600}).json()["jobs"]
                    if not r:
                        return got
                    got.extend(float(j["id"]) for j in r)

        t0 = time.perf_counter()
        claimed = concurrently(args.agents, claimer)
        dt = time.perf_counter() - t0
        assert len(claimed) == len(set(claimed)) == total
        print(f"claim: {total} jobs by {args.agents} claimers (n=4) in {dt:.2f}s = {total / dt:,.0f} jobs/s, "
              "each exactly once")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
