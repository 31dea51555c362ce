"""The main job, end to end on the embedded defaults, with nothing to set up:

1. a LUT server on SQLite (``lut serve``),
2. an agent token for this machine (``lut token create``),
3. the search space registered for this CPU's target (every op becomes a job),
4. a real agent timing every job on this CPU (``profiler-agent run --exit-when-idle``),
5. the cost matrix C(i,j) fetched in one round trip, printed, and exported
   (C as CSV, the LUT as nas-lut/1 JSON and as ProxylessNAS-style YAML),
6. the LUT's prediction for the published SqueezeNAS networks of the space.

    python examples/quickstart.py [--space squeezenas-small] [--resolution 128x256] [--out out/quickstart]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import httpx

from lutcore.cli.table import render
from lutcore.ops import OpSpec
from lutcore.spaces import get_arch, get_space, published_names
from profiler_agent.backends import get_backend
from search_client import LUTClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lut_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "lutcore", *args]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"lut serve exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"lut serve did not answer {url}/healthz within {timeout:.0f}s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="squeezenas-small")
    p.add_argument("--resolution", default="128x256", help="HxW (small by default so the run takes ~2 minutes)")
    p.add_argument("--out", default="out/quickstart", help="where the database and exports go")
    p.add_argument("--threads", type=int, default=1, help="CPU threads the agent times with")
    p.add_argument("--max-time-per-op", type=float, default=0.3, help="agent time budget per op (s)")
    args = p.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{(out / 'lut.db').resolve()}"
    space = get_space(args.space, args.resolution)
    with get_backend("pytorch-cpu", threads=args.threads) as backend:
        target = backend.target("cpu").id
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    print(f"[1/6] lut serve --db {db} --port {port}", flush=True)
    server = subprocess.Popen(lut_cmd("serve", "--db", db, "--port", str(port), "--no-access-log"), env=env)
    try:
        wait_healthy(url, server)
        print("[2/6] lut token create --device quickstart --device-class cpu", flush=True)
        token = subprocess.run(
            lut_cmd("token", "create", "--device", "quickstart", "--device-class", "cpu", "--db", db),
            check=True, capture_output=True, text=True, env=env,
        ).stdout.strip()

        search_token = subprocess.run(  # registering a space needs a search (or agent/admin) token
            lut_cmd("token", "create", "--search", "--db", db), check=True, capture_output=True, text=True, env=env,
        ).stdout.strip()
        client = LUTClient(url, token=search_token)
        reg = client.register_space(space.name, target, resolution=args.resolution)
        skips = len({c.key for row in space.grid for c in row if isinstance(c, OpSpec) and c.is_identity})
        print(f"[3/6] registered {space.name} at {args.resolution} for {target}: "
              f"{reg.get('unique_ops')} unique ops, {reg.get('enqueued')} jobs enqueued "
              f"(coverage counts {skips} identity skips more: they cost 0)", flush=True)

        print("[4/6] profiler-agent run --exit-when-idle (timing every job on this CPU)", flush=True)
        agent = subprocess.run(
            [sys.executable, "-m", "profiler_agent", "run", "--device", "cpu", "--name", "quickstart",
             "--server", url, "--token", token, "--backend", "pytorch-cpu", "--threads", str(args.threads),
             "--exit-when-idle", "--max-time-per-op", str(args.max_time_per_op), "--poll", "0.5",
             "--spool", str(out / "spool")],
            env=env,
        )
        if agent.returncode != 0:
            print(f"profiler-agent exited with {agent.returncode}", file=sys.stderr)
            return agent.returncode

        cm = client.cost_matrix(space.name, target, resolution=args.resolution)
        print(f"[5/6] C(i,j) in ms, {space.name} at {args.resolution} on {target} "
              f"(coverage {cm.coverage.get('fraction', 0):.0%}, LUT version {cm.lut_version}):")
        rows = []
        for i in range(cm.C.shape[0]):
            rows.append([i] + [None if cm.mask[i, j] else round(float(cm.C[i, j]), 3) for j in range(cm.C.shape[1])])
        print(render(["layer"] + list(cm.candidates), rows))
        print(f"fixed cost (stem/head/decoder): {float(cm.fixed):.3f} ms")

        csv = out / "C.csv"
        csv.write_text(
            "layer," + ",".join(cm.candidates) + "\n"
            + "\n".join(f"{i}," + ",".join("" if v is None else str(v) for v in row[1:]) for i, row in enumerate(rows))
            + "\n"
        )
        # OFA's latency-table YAML only for the spaces its networks have (docs/formats/ofa.md)
        ofa_fmt = {"mobilenetv2": "proxyless-yaml", "ofa-mbv3": "ofa-mbv3-yaml"}.get(space.name)
        exports = [("nas-lut", "lut.json")] + ([(ofa_fmt, "lut.yaml")] if ofa_fmt else [])
        for fmt, name in exports:
            subprocess.run(lut_cmd("export", "--server", url, "--target", target, "--format", fmt, "--space",
                                   space.name, "-r", args.resolution, "-o", str(out / name)), check=True, env=env)
        print(f"[6/6] exported {csv}, " + ", ".join(str(out / name) for _, name in exports))
        for name in published_names():
            arch = get_arch(name, args.resolution)
            if arch.space.name == space.name:
                ms = client.predict_latency(space.name, list(arch.choices), target, resolution=args.resolution)
                print(f"      {name}: LUT predicts {float(ms):.2f} ms, {arch.macs() / 1e9:.3f} GMACs")
        client.close()
        return 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
