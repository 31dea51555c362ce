"""LUT server throughput on this machine: ingest, cost matrix, lookup and claim, against real HTTP.

    eval "$(.ci/start-postgres.sh)"; python bench/bench_server.py [--db URL] [--workers 2] [--space NAME]

Runs `lut serve --workers N` (default 2) on a fresh PostgreSQL database and prints p50, p99 and
req/s per phase (no pass/fail); the figures are kept as JSON under bench/results/. The cost matrix
is read by 1 and by 32 concurrent readers, plainly and, when the server answers with an ETag,
conditionally (`If-None-Match`, counting the 304s). Goals (issues 3 and 13): ingest >= 2,000
measurements/s with 8 posting agents; p99 of the squeezenas-xlarge (22 x 13) cost matrix <= 25 ms under
32 concurrent readers with 2 workers, read as wrk's p99 over 5 runs (the Python readers share the 2 cores
with the server and, by Little's law, cannot issue enough requests for it). The same matrix built
from a local export file (search_client's offline path) is timed for comparison.
`--space squeezenas-small --seconds 2` is a quick check.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))

from lutcore.spaces import get_chain_space  # noqa: E402

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


def start(db: str, workers: int, log_path: Path) -> Tuple[subprocess.Popen, str, str]:
    """`lut serve` as a user runs it (its access log on, written to ``log_path``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    admin = "bench_" + secrets.token_hex(16)
    env = dict(os.environ, LUT_ADMIN_TOKEN=admin, PYTHONPATH=str(REPO))
    log = open(log_path, "wb")  # noqa: SIM115 - the server's for its lifetime
    proc = subprocess.Popen([sys.executable, "-m", "lutcore", "serve", "--db", db, "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"lut serve exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return proc, url, admin
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"lut serve did not answer within 60 s; log in {log_path}")


def token(url: str, admin: str, device: str) -> str:
    """An agent token for ``device``, bound to the xavier class where the server knows classes."""
    headers = {"Authorization": f"Bearer {admin}"}
    r = httpx.post(url + "/api/v1/tokens", json={"role": "agent", "device": device, "device_class": "xavier"},
                   headers=headers)
    if r.status_code == 422:  # a server without device classes on tokens
        r = httpx.post(url + "/api/v1/tokens", json={"role": "agent", "device": device}, headers=headers)
    r.raise_for_status()
    return str(r.json()["token"])


def stats(m: float) -> Dict[str, Any]:
    return {"median_ms": m, "mean_ms": m, "std_ms": 0.01 * m, "min_ms": 0.9 * m, "p10_ms": 0.95 * m,
            "p90_ms": 1.1 * m, "n": 100}


def concurrently(n: int, fn: Callable[[int], List[Any]]) -> List[Any]:
    out: List[List[Any]] = [[] for _ in range(n)]
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


def in_processes(n: int, fn: Callable[[int], List[Any]]) -> List[Any]:
    """``fn`` in ``n`` forked processes started together: readers that are separate programs, as search
    jobs are, each with its own interpreter (threads in one process queue on its GIL, which the
    server's latency then includes)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()

    def run(i: int) -> None:
        barrier.wait()
        queue.put(fn(i))

    procs = [ctx.Process(target=run, args=(i,)) for i in range(n)]
    for p in procs:
        p.start()
    out = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return [x for o in out for x in o]


def pct(xs: List[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def figures(lat: List[float], seconds: float) -> Dict[str, Any]:
    return {"requests": len(lat), "p50_ms": round(1e3 * pct(lat, 0.5), 2), "p99_ms": round(1e3 * pct(lat, 0.99), 2),
            "req_per_s": round(len(lat) / seconds, 1)}


def line(what: str, f: Dict[str, Any]) -> str:
    return f"{what}: p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, {f['req_per_s']:,.0f} req/s"


def timed_reads(api: str, seconds: float, path: str, payload: Dict[str, Any],
                etag: Optional[str] = None) -> Callable[[int], List[Tuple[float, int]]]:
    """One reader: posts ``payload`` for ``seconds``; with ``etag``, as a conditional request."""
    headers = {"If-None-Match": etag} if etag else {}

    def go(_i: int) -> List[Tuple[float, int]]:
        out = []
        end = time.perf_counter() + seconds
        with httpx.Client(base_url=api, timeout=60, headers=headers) as c:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                r = c.post(path, json=payload)
                out.append((time.perf_counter() - t0, r.status_code))
                assert r.status_code in ((200, 304) if etag else (200,)), (r.status_code, r.text[:300])
        return out
    return go


def wrk_matrix(api: str, body: Dict[str, Any], connections: int, seconds: float) -> Optional[Dict[str, float]]:
    """The cost matrix under ``connections`` keep-alive connections from wrk (C, two threads), when it is
    installed: the Python readers above spend about as much CPU per request as the server does on these
    2 cores, so they measure the pair; wrk leaves the cores to the server."""
    import re
    import shutil

    if shutil.which("wrk") is None:
        print("cost matrix: wrk not installed (apt-get install wrk), so no figures without the Python client")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                 f"wrk.body = '{json.dumps(body)}'\n")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency", "-s", fh.name,
                          api + "/cost-matrix"], capture_output=True, text=True).stdout
    os.unlink(fh.name)

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"p50_ms": ms("50%"), "p99_ms": ms("99%"), "req_per_s": float(rate.group(1)) if rate else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="database URL (default: a fresh PostgreSQL database)")
    ap.add_argument("--workers", type=int, default=2, help="`lut serve --workers` (default 2)")
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--readers", type=int, default=32)
    ap.add_argument("--wrk-runs", type=int, default=5, help="repetitions of the wrk phase (default 5)")
    ap.add_argument("--seconds", type=float, default=8.0, help="duration of each read phase")
    ap.add_argument("--space", default="squeezenas-xlarge", help="space of the matrix (default squeezenas-xlarge)")
    ap.add_argument("--batches", type=int, default=3, help="measurement batches per agent (default 3)")
    ap.add_argument("--out", type=Path, help="JSON results (default bench/results/bench_server_<space>_w<N>.json)")
    args = ap.parse_args()
    db = args.db or pg_url()
    out_path = args.out or RESULTS / f"bench_server_{args.space}_w{args.workers}.json"
    log_path = Path(tempfile.gettempdir()) / f"bench_server_{os.getpid()}.log"
    proc, url, admin = start(db, args.workers, log_path)
    api = url + "/api/v1"
    admin_h = {"Authorization": f"Bearer {admin}"}
    dialect = db.split(":", 1)[0].split("+")[0]
    print(f"server {url}, db {dialect}, workers {args.workers}, {os.cpu_count()} cpus, server log {log_path}")
    res: Dict[str, Any] = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "db": dialect, "workers": args.workers, "space": args.space, "seconds_per_read_phase": args.seconds,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO), capture_output=True,
                                 text=True).stdout.strip(),
    }
    try:
        sp = get_chain_space(args.space)
        ops = list(sp.unique_ops().values())
        # -- ingest: N agents, each posting its own runs of every op of the space
        toks = [token(url, admin, f"board-{i}") for i in range(args.agents)]

        def post(i: int) -> List[float]:
            lat = []
            with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {toks[i]}"}, timeout=120) as c:
                for b in range(args.batches):
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
        n = args.agents * args.batches * len(ops)
        res["ingest"] = {"agents": args.agents, "batch_items": len(ops), **figures(lat, dt),
                         "measurements": n, "measurements_per_s": round(n / dt, 1)}
        print(line(f"ingest ({args.agents} agents, batches of {len(ops)})", res["ingest"])
              + f" = {n / dt:,.0f} measurements/s")

        # -- cost matrix under 1 and N concurrent readers, plain and conditional
        body = {"space": args.space, "target": TID}
        first = httpx.post(api + "/cost-matrix", json=body, timeout=60)
        cm = first.json()
        assert cm["coverage"]["fraction"] == 1.0, cm["coverage"]
        etag = first.headers.get("etag")
        shape = f"{cm['layers']}x{len(cm['candidates'])} at {cm['resolution']}"
        res["cost_matrix"] = {"shape": shape, "bytes": len(first.content), "etag": bool(etag)}
        for readers in (1, args.readers):
            runs = {"plain": None, "conditional": etag}
            for mode, tag in runs.items():
                if mode == "conditional" and not tag:
                    continue
                for how, run in (("threads", concurrently), ("processes", in_processes)):
                    if readers == 1 and how == "processes":
                        continue
                    got = run(readers, timed_reads(api, args.seconds, "/cost-matrix", body, tag))
                    f = figures([t for t, _ in got], args.seconds)
                    if tag:
                        f["not_modified_304"] = sum(1 for _, st in got if st == 304)
                    label = f"{mode}_{readers}_readers" + ("_processes" if how == "processes" else "")
                    res["cost_matrix"][label] = f
                    extra = f", {f['not_modified_304']} x 304" if tag else ""
                    who = f"{readers} reader processes" if how == "processes" else f"{readers} readers"
                    print(line(f"cost matrix {args.space} {shape}, {who}, {mode}", f) + extra)
        if not etag:
            print("cost matrix: no ETag from this server, so no conditional figures")
        wrk_matrix(api, body, args.readers, 2)  # warm-up: every worker has rendered and checked the matrix
        wruns = []
        for k in range(args.wrk_runs):
            wrk = wrk_matrix(api, body, args.readers, args.seconds)
            if wrk is None:
                break
            wruns.append(wrk)
            print(line(f"cost matrix {args.space} {shape}, {args.readers} connections, wrk run {k + 1}", wrk))
        if wruns:
            p99s = sorted(w["p99_ms"] for w in wruns)
            res["cost_matrix"][f"wrk_{args.readers}_connections"] = {
                "runs": wruns, "p99_ms_median": p99s[len(p99s) // 2], "p99_ms_max": p99s[-1],
                "p50_ms_median": sorted(w["p50_ms"] for w in wruns)[len(wruns) // 2],
                "req_per_s_median": sorted(w["req_per_s"] for w in wruns)[len(wruns) // 2]}
            print(f"cost matrix, wrk over {len(wruns)} runs: p99 median {p99s[len(p99s) // 2]:.1f} ms, "
                  f"max {p99s[-1]:.1f} ms")

        keys = [o.key for o in ops][:100]
        got = concurrently(8, timed_reads(api, args.seconds, "/lookup", {"target": TID, "keys": keys}))
        res["lookup"] = {"keys": len(keys), "readers": 8, **figures([t for t, _ in got], args.seconds)}
        print(line(f"lookup of {len(keys)} keys, 8 readers", res["lookup"])
              + f" = {len(got) * len(keys) / args.seconds:,.0f} keys/s")

        # -- the same matrix from a local JSON export
        doc = httpx.get(api + "/export", params={"target": TID}, timeout=120).json()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(doc, fh)
        t0 = time.perf_counter()
        with open(fh.name) as f2:
            table = {e["key"]: e["value_ms"] for e in json.load(f2)["targets"][0]["entries"]}
        load = time.perf_counter() - t0
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            _m = [[table.get(k) if k else None for k in row] for row in sp.key_matrix()]
            times.append(time.perf_counter() - t0)
        os.unlink(fh.name)
        res["local_json"] = {"entries": len(table), "load_ms": round(1e3 * load, 2),
                             "p50_ms": round(1e3 * pct(times, 0.5), 3), "p99_ms": round(1e3 * pct(times, 0.99), 3)}
        print(f"local JSON file ({len(table)} entries): load {1e3 * load:.1f} ms once, matrix "
              f"p50 {1e3 * pct(times, 0.5):.2f} ms, p99 {1e3 * pct(times, 0.99):.2f} ms")

        # -- claims: seed jobs by registering the space at other resolutions, then drain with N claimers
        total = 0
        for res_hw in ("256x512", "512x1024", "128x256"):
            r = httpx.post(api + "/spaces", json={"space": args.space, "resolution": res_hw, "target": TID},
                           headers=admin_h, timeout=120)
            r.raise_for_status()
            total += r.json()["enqueued"]

        def claimer(i: int) -> List[Tuple[float, int]]:
            got: List[Tuple[float, int]] = []
            with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {toks[i]}"}, timeout=60) as c:
                while True:
                    t0 = time.perf_counter()
                    r = c.post("/jobs/claim", json={"target": TID, "n": 4, "lease_s": 600})
                    dt_i = time.perf_counter() - t0
                    assert r.status_code == 200, r.text[:300]
                    jobs = r.json()["jobs"]
                    if not jobs:
                        return got
                    got.extend((dt_i, int(j["id"])) for j in jobs)

        t0 = time.perf_counter()
        claimed = concurrently(args.agents, claimer)
        dt = time.perf_counter() - t0
        ids = [j for _, j in claimed]
        assert len(ids) == len(set(ids)) == total, (len(ids), len(set(ids)), total)
        res["claim"] = {"jobs": total, "claimers": args.agents, "n_per_claim": 4, "seconds": round(dt, 3),
                        "jobs_per_s": round(total / dt, 1), **figures([t for t, _ in claimed], dt)}
        print(line(f"claim: {total} jobs by {args.agents} claimers (n=4) in {dt:.2f}s = {total / dt:,.0f} jobs/s, "
                   "each exactly once; per claim", res["claim"]))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"results in {out_path}")


if __name__ == "__main__":
    main()
