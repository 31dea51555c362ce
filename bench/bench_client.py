"""Search-client figures: the cost matrix of squeezenas-xlarge cold (one round trip) and cached, file
mode, and the resource loss's forward+backward cost per search step.

    python bench/bench_client.py                      # starts its own `lut serve` on a temp SQLite file
    python bench/bench_client.py --server URL --target ID   # an existing server that has the LUT
Goal: a cached matrix in < 1 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import httpx
import torch

from lutcore.records import Target
from lutcore.spaces import get_chain_space, get_space
from search_client import ExpectedCostLoss, LUTClient, TargetLatencyLoss, gumbel_softmax, masked_softmax

SPACE = "squeezenas-xlarge"
ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object], n: int) -> Tuple[float, float]:
    """(median, min) seconds per call over n calls."""
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path) -> Tuple[subprocess.Popen, str, str]:
    """`lut serve` on a temp SQLite database; (process, url, db url)."""
    db = f"sqlite:///{tmp / 'lut.db'}"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lutcore.cli.main", "serve", "--db", db, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url, db
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("lut serve did not start")


def fill(url: str, db: str, target: Target, resolution: Optional[str]) -> None:
    """Post made-up timings for every op of the space, as an agent would."""
    name = f"{target.device}-01"
    tok = subprocess.run(
        [sys.executable, "-m", "lutcore.cli.main", "token", "create", "--device", name, "--device-class",
         target.device, "--db", db],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    auth = {"Authorization": f"Bearer {tok}"}
    dev = {"name": name, "device_class": target.device}
    httpx.post(url + "/api/v1/devices", json=dev, headers=auth).raise_for_status()
    space = get_space(SPACE, resolution)
    items = []
    for i, (k, s) in enumerate(space.unique_ops().items()):
        ms = 0.05 + (i % 17) * 0.1
        st = {"median_ms": ms, "mean_ms": ms, "std_ms": 0.0, "min_ms": ms, "p10_ms": ms, "p90_ms": ms, "n": 10}
        items.append({"op": {"key": k, "spec": s.to_dict()}, "stats": st})
    body = {"run_id": uuid.uuid4().hex, "target": target.model_dump(), "device_name": name, "items": items}
    r = httpx.post(url + "/api/v1/measurements", json=body, headers=auth, timeout=120)
    r.raise_for_status()


def bench_matrix(url: str, target: str, resolution: Optional[str], tmp: Path) -> Dict[str, float]:
    out: Dict[str, float] = {}
    colds = []
    for _ in range(10):
        with LUTClient(url) as c:
            t0 = time.perf_counter()
            cm = c.cost_matrix(SPACE, target, resolution=resolution)
            colds.append(time.perf_counter() - t0)
            assert c.round_trips == 1, c.round_trips
    out["cold (1 round trip), ms"] = statistics.median(colds) * 1e3
    with LUTClient(url) as c:
        c.cost_matrix(SPACE, target, resolution=resolution)
        med, best = timed(lambda: c.cost_matrix(SPACE, target, resolution=resolution), 2000)
        out["cached, us (median)"] = med * 1e6
        out["cached, us (min)"] = best * 1e6
        space = get_space(SPACE, resolution)
        med, _ = timed(lambda: c.cost_matrix(space, target), 2000)
        out["cached, Space object, us"] = med * 1e6
        med, _ = timed(lambda: c.lookup(list(space.unique_ops()), target), 10)
        out["lookup of all keys (1 request), ms"] = med * 1e3
        path = tmp / "lut.json"
        path.write_text(json.dumps(c.export(target)))
    t0 = time.perf_counter()
    f = LUTClient.from_file(path)
    fcm = f.cost_matrix(SPACE, target, resolution=resolution)
    out["file mode cold (load + build), ms"] = (time.perf_counter() - t0) * 1e3
    med, _ = timed(lambda: f.cost_matrix(SPACE, target, resolution=resolution), 2000)
    out["file mode cached, us"] = med * 1e6
    assert torch.equal(fcm.C, cm.C)
    out["layers x candidates"] = float(cm.C.numel())
    return out


def bench_loss(device: str, steps: int = 200, repeats: int = 5) -> Dict[str, float]:
    """Forward+backward of the resource term per step for a [22 x 13] matrix (squeezenas-xlarge).

    Best of ``repeats`` runs of ``steps`` steps (the machine may be shared); the baseline is the bare
    ``(softmax(alpha) * C).sum()`` with no mask handling, for the overhead of the modules."""
    space = get_chain_space(SPACE)
    C = torch.rand(space.num_layers, len(space.candidates), device=device) * 5
    mask = torch.tensor(space.mask(), device=device)
    alpha = torch.zeros(C.shape, device=device, requires_grad=True)
    exp = ExpectedCostLoss(C, mask, fixed=3.0).to(device)
    logits = ExpectedCostLoss(C, mask, fixed=3.0, from_logits=True).to(device)
    tgt = TargetLatencyLoss(C, mask, fixed=3.0, target=40.0).to(device)
    tgt_fast = TargetLatencyLoss(C, mask, fixed=3.0, target=40.0, strict=False).to(device)
    cases = {
        "baseline (softmax(alpha) * C).sum()": lambda: (torch.softmax(alpha, -1) * C).sum(),
        "expected cost, softmax probs": lambda: exp(masked_softmax(alpha, mask)),
        "expected cost, from logits": lambda: logits(alpha),
        "target latency, hard gumbel (strict)": lambda: tgt(gumbel_softmax(alpha, mask, 1.0, True)),
        "target latency, hard gumbel (strict=False)": lambda: tgt_fast(gumbel_softmax(alpha, mask, 1.0, True)),
    }
    out = {}
    for name, f in cases.items():
        def step(f: Callable[[], torch.Tensor] = f) -> None:
            alpha.grad = None
            f().backward()

        for _ in range(20):
            step()
        best = float("inf")
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - t0) / steps)
        out[f"{name} [{device}], us/step"] = best * 1e6
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", help="an existing server holding the LUT of squeezenas-xlarge for --target")
    p.add_argument("--target", default="cpu-bench/pytorch-cpu/fp32@threads=1")
    p.add_argument("--resolution", default=None, help="HxW (default the space's own, 1024x2048)")
    p.add_argument("--skip-server", action="store_true", help="only the loss figures")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    figures: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_server:
            proc = None
            url = args.server
            if url is None:
                proc, url, db = start_server(tmp)
                fill(url, db, Target.parse(args.target), args.resolution)
            try:
                figures.update(bench_matrix(url, args.target, args.resolution, tmp))
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)
    figures.update(bench_loss("cpu"))
    if torch.cuda.is_available():
        figures.update(bench_loss("cuda"))
    print(f"search client, {SPACE} at {args.resolution or get_space(SPACE).resolution_str}")
    w = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"  {k:<{w}}  {v:10.1f}" if v >= 10 else f"  {k:<{w}}  {v:10.3f}")
    if "cached, us (median)" in figures:
        ok = figures["cached, us (median)"] < 1000.0
        print(f"goal: cached matrix < 1 ms -> {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
