"""LUT truth where users get it: the product's own path, end to end, as separate commands.

For each configuration (backend, threads) and space, on one real LUT server (``lut serve`` over
SQLite, the embedded default) shared by the whole run, exactly what a user does:

1. fill the LUT with the agent: ``profiler-agent profile --server URL`` (ops the server already
   has are skipped) then ``profiler-agent sync``;
2. calibrate: ``profiler-agent validate --archs random:N --seed A --calibrate --server URL``
   (the server fits and stores the calibration);
3. time other architectures: ``profiler-agent validate --archs random:M --seed B --server URL``
   (``random:N --seed A`` names seeds A..A+N-1, so B = A + N: no held-out architecture was fitted on);
4. predict those architectures through ``search_client.LUTClient.predict_latency`` (the server's
   calibration applied) and compare with their measured latency.

Figures: raw (LUT sum) and calibrated |error| per held-out architecture, median and max, and
wall time per step. ``--runs 3`` repeats the whole matrix on a fresh server each time.

Each run records the code it measured (commit and a digest of the product packages, ``code_state``)
and the machine's load average; ``--json`` is rewritten after every configuration, so an
interrupted run keeps what it measured. A full run takes about an hour on a 2-core host, so three
may not fit one sitting: ``--append`` adds runs to the file's, refusing when the product code
differs from theirs, and the verdict counts the consecutive runs of the same code that met the goal.

    python bench/bench_workflow.py                        # 3 configs x 3 spaces, one run
    python bench/bench_workflow.py --runs 3 --json bench/results/workflow_cpu.json
    python bench/bench_workflow.py --runs 2 --json bench/results/workflow_cpu.json --append
    python bench/bench_workflow.py --quick                # a smoke run (~3 min)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import httpx

from lutcore.spaces import get_arch
from profiler_agent.timing.reference import DEFAULT_SENSITIVITY
from search_client import LUTClient

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [("pytorch-cpu", 1), ("pytorch-cpu", 2), ("onnxruntime", 1)]
SPACES = [("squeezenas-small", "256x512"), ("squeezenas-large", "256x512"), ("tfnas", "224x224")]
DEVICE_CLASS = "cpu-bench"
PRODUCT = ("lutcore", "profiler_agent", "lut_server", "search_client")
# The settings that make two runs comparable (``--append`` refuses a file made with others).
COMPARABLE = ("config", "space", "fit", "held", "fit_share", "seed", "op_time", "op_rounds", "net_rounds", "speed_ref",
              "fresh_speed_base", "sensitivity", "quick")
# Bumped when the bench's own protocol changes (2: held-out seeds start after the fitted ones).
PROTOCOL = 2
PREDATED = {"sensitivity": "0.5"}  # settings added after some result files were written: the value those ran with
GOAL_MEDIAN, GOAL_MAX = 0.03, 0.10  # issue 12: calibrated median |error| and every held-out architecture


def code_state() -> Dict[str, Any]:
    """The commit, a digest of the product packages' tracked files (blob ids, so a commit that only
    adds results or docs keeps it) and whether they hold uncommitted changes: which code a run measured."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=str(REPO), capture_output=True, text=True, check=True).stdout

    try:
        listing = git("ls-files", "-s", "--", *PRODUCT)
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", *PRODUCT).strip())
        commit = git("rev-parse", "HEAD").strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "product_digest": None, "dirty": None}
    return {"commit": commit, "product_digest": hashlib.sha256(listing.encode()).hexdigest()[:16], "dirty": dirty}


def held_out_seed(args: argparse.Namespace) -> int:
    """``random:N --seed A`` names seeds A..A+N-1: the held-out architectures start after them."""
    return int(args.seed + args.fit)


def goal_met(r: Dict[str, Any]) -> bool:
    return bool(r["cal_median"] <= GOAL_MEDIAN and r["cal_max"] <= GOAL_MAX)


def consecutive_met(runs: List[Dict[str, Any]]) -> int:
    """How many of the last runs, back to the first that missed, or ran other code, met the goal in
    every configuration."""
    n, digest = 0, None
    for run in reversed(runs):
        d = (run.get("code") or {}).get("product_digest")
        if not run.get("complete", True) or not run.get("goal_met") or d is None or digest not in (None, d):
            break
        digest, n = d, n + 1
    return n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``lut serve`` on a fresh SQLite file, with an admin token and one agent token."""

    def __init__(self, workdir: Path) -> None:
        self.admin = "bench-admin-" + secrets.token_urlsafe(24)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, LUT_ADMIN_TOKEN=self.admin, PYTHONPATH=str(REPO))
        self.log = open(workdir / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lutcore", "serve", "--db", f"sqlite:///{workdir / 'lut.db'}",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=str(REPO), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lut serve did not start; see {workdir / 'server.log'}")
            time.sleep(0.3)
        self.token = self.create_token("bench-board")

    def create_token(self, device: str) -> str:
        body = {"role": "agent", "device": device, "device_class": DEVICE_CLASS}
        r = httpx.post(self.url + "/api/v1/tokens", json=body, headers={"Authorization": f"Bearer {self.admin}"})
        r.raise_for_status()
        return str(r.json()["token"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def agent(args: List[str], server: Server, cwd: Path) -> Tuple[str, float]:
    """Run ``profiler-agent ARGS`` as a user would; its stdout and wall seconds."""
    # Each run is a fresh machine: its first agent process calibrates the speed base the rest keep.
    env = dict(os.environ, LUT_SERVER=server.url, LUT_TOKEN=server.token, PYTHONPATH=str(REPO),
               LUT_SPEED_BASE=str(cwd / "speed-base.json"))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "profiler_agent", *args], cwd=str(cwd), env=env,
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"profiler-agent {' '.join(args)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout, wall


def one(server: Server, backend: str, threads: int, space: str, res: str, args: argparse.Namespace,
        workdir: Path) -> Dict[str, Any]:
    measuring = ["--device", DEVICE_CLASS, "--name", "bench-board", "--backend", backend, "--threads", str(threads),
                 "-q"]
    if args.speed_ref:
        measuring += ["--speed-ref", "--speed-ref-fresh"] if args.fresh_speed_base else ["--speed-ref"]
        measuring += ["--speed-sensitivity", args.sensitivity]
    run_file = workdir / f"{backend}-{threads}-{space}-{res}.jsonl"
    _, t_profile = agent(["profile", "--space", space, "-r", res, "-o", str(run_file), "--server", server.url,
                          "--max-time-per-op", str(args.op_time), "--rounds", str(args.op_rounds), *measuring],
                         server, workdir)
    _, t_sync = agent(["sync", str(run_file), "-q"], server, workdir)
    net_rounds = ["--rounds", str(args.net_rounds)]
    fit_out, t_cal = agent(["validate", "--space", space, "-r", res, "--archs", f"random:{args.fit}",
                            "--seed", str(args.seed), "--calibrate", "--fit-share", str(args.fit_share),
                            "--json", *net_rounds, *measuring], server, workdir)
    held_out, t_held = agent(["validate", "--space", space, "-r", res, "--archs", f"random:{args.held}",
                              "--seed", str(held_out_seed(args)), "--json", *net_rounds, *measuring], server, workdir)
    *fitted, fit_summary = [json.loads(line) for line in fit_out.strip().splitlines()]
    *measured, held_summary = [json.loads(line) for line in held_out.strip().splitlines()]
    target = held_summary["target"]

    rows = []
    with LUTClient(server.url) as client, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for m in measured:
            arch = get_arch(m["arch"], res)
            pred = client.predict_latency(space, arch, target=target, resolution=res)
            rows.append({"arch": m["arch"], "measured_ms": m["measured_ms"], "lut_ms": pred.lut_ms,
                         "predicted_ms": pred.ms, "raw_error": pred.lut_ms / m["measured_ms"] - 1,
                         "error": pred.ms / m["measured_ms"] - 1, "rounds": m.get("rounds"),
                         "spread": m.get("spread"), "speed": (m.get("env") or {}).get("speed")})
    cal = (fit_summary.get("server_calibration") or {}).get("calibration") or {}
    raw = [abs(r["raw_error"]) for r in rows]
    err = [abs(r["error"]) for r in rows]
    out = {
        "target": target, "space": space, "resolution": res, "held_out": len(rows),
        "raw_median": statistics.median(raw), "raw_max": max(raw),
        "cal_median": statistics.median(err), "cal_max": max(err),
        "within_10pct": sum(e <= 0.10 for e in err) / len(err),
        "model": cal.get("model"), "a": cal.get("a"), "b": cal.get("b"),
        "stale_warnings": sum(1 for w in caught if "Stale" in type(w.message).__name__),
        "seconds": {"profile": round(t_profile, 1), "sync": round(t_sync, 1), "calibrate": round(t_cal, 1),
                    "held_out": round(t_held, 1)},
        "rows": rows,
        # The calibration process's own networks: their mean raw error beside the held-out one's shows a
        # whole-process offset directly, and their rounds the noise of the "truth" it was fitted on.
        "fit_rows": [{"arch": f["arch"], "measured_ms": f["measured_ms"], "lut_ms": f["predicted_ms"],
                      "raw_error": f["predicted_ms"] / f["measured_ms"] - 1, "rounds": f.get("rounds"),
                      "speed": (f.get("env") or {}).get("speed")}
                     for f in fitted],
    }
    print(f"   {target:40s} {space:17s} raw {100 * out['raw_median']:5.2f}% / {100 * out['raw_max']:5.2f}%  "
          f"cal {100 * out['cal_median']:5.2f}% / {100 * out['cal_max']:5.2f}% ({out['model']})  "
          f"profile {t_profile:5.0f}s, calibrate {t_cal:4.0f}s, held-out {t_held:4.0f}s", flush=True)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=1, help="repeat the whole matrix this many times (fresh server each)")
    p.add_argument("--config", action="append", help="only these, e.g. pytorch-cpu:1 onnxruntime:1")
    p.add_argument("--space", action="append", help="only these spaces")
    p.add_argument("--fit", type=int, default=20, help="random architectures the calibration is fitted on (20)")
    p.add_argument("--held", type=int, default=12, help="held-out random architectures (12)")
    p.add_argument("--fit-share", type=float, default=1.0,
                   help="validate --fit-share: the calibration rests on all the seed-A archs by default, since "
                        "the held-out seed-B archs score it")
    p.add_argument("--seed", type=int, default=5000)
    p.add_argument("--op-time", type=float, default=2.0, help="profile --max-time-per-op (the agent's default, 2)")
    p.add_argument("--op-rounds", type=int, default=5, help="profile --rounds (the agent's default, 5)")
    p.add_argument("--net-rounds", type=int, default=5, help="validate --rounds per network (its default, 5)")
    p.add_argument("--no-speed-ref", dest="speed_ref", action="store_false")
    p.add_argument("--fresh-speed-base", action="store_true",
                   help="each agent process calibrates its own speed base (--speed-ref-fresh), none is kept")
    p.add_argument("--sensitivity", default=str(DEFAULT_SENSITIVITY),
                   help="--speed-sensitivity of every agent command: a share (the agent's default), or auto")
    p.add_argument("--quick", action="store_true", help="pytorch-cpu:1 on squeezenas-small at 128x256, 6+4 archs")
    p.add_argument("--json", help="write every figure to this file (rewritten after each configuration)")
    p.add_argument("--append", action="store_true",
                   help="add these runs to those already in --json (same product code only)")
    args = p.parse_args(argv)
    configs = [(b, t) for b, t in CONFIGS if not args.config or f"{b}:{t}" in args.config]
    spaces = [(s, r) for s, r in SPACES if not args.space or s in args.space]
    if args.quick:
        configs, spaces = configs[:1], [("squeezenas-small", "128x256")]
        args.fit, args.held, args.op_time = 6, 4, 0.5
    code = code_state()
    runs: List[Dict[str, Any]] = []
    if args.append:
        if not args.json or not Path(args.json).exists():
            p.error("--append needs an existing --json file to add to")
        doc = json.loads(Path(args.json).read_text())
        runs = list(doc.get("runs", []))
        differ = [k for k in COMPARABLE if (doc.get("args") or {}).get(k, PREDATED.get(k)) != vars(args).get(k)]
        differ += ["the bench's protocol"] if doc.get("protocol") != PROTOCOL else []
        if differ:
            p.error(f"{args.json} holds runs made with other settings ({', '.join(differ)}): start a new file")
        theirs = {(r.get("code") or {}).get("product_digest") for r in runs}
        if theirs and theirs != {code["product_digest"]}:
            p.error(f"{args.json} holds runs of other product code ({', '.join(sorted(map(str, theirs)))}; "
                    f"this checkout is {code['product_digest']}): start a new file")
    if code["dirty"]:
        print("   note: the product packages have uncommitted changes; these runs measure them", flush=True)

    def save() -> None:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"protocol": PROTOCOL, "args": vars(args), "runs": runs}, indent=1,
                                                  default=str))

    first = len(runs) + 1
    for run in range(first, first + args.runs):
        t0 = time.monotonic()
        print(f"== run {run} ({run - first + 1} of {args.runs} now)", flush=True)
        record: Dict[str, Any] = {"run": run, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "code": code, "load_avg_start": list(os.getloadavg()), "complete": False,
                                  "results": []}
        runs.append(record)
        with tempfile.TemporaryDirectory(prefix="lut-workflow-") as tmp:
            server = Server(Path(tmp))
            try:
                for b, t in configs:
                    for s, r in spaces:
                        record["results"].append(one(server, b, t, s, r, args, Path(tmp)))
                        save()
            finally:
                server.stop()
                kept = Path(tmp) / "speed-base.json"
                record["speed_bases"] = json.loads(kept.read_text()) if kept.exists() else None
        wall = time.monotonic() - t0
        results = record["results"]
        met = sum(goal_met(r) for r in results)
        record.update(wall_s=round(wall, 1), goal_met=met == len(results), complete=True,
                      load_avg_end=list(os.getloadavg()))
        save()
        print(f"   run {run}: {wall / 60:.1f} min, load average {record['load_avg_start'][0]:.2f} -> "
              f"{record['load_avg_end'][0]:.2f}; goal (calibrated median <= 3%, every held-out arch within 10%) "
              f"met in {met} of {len(results)}", flush=True)
    if args.json:
        print(f"== consecutive runs of this code meeting the goal in every configuration: {consecutive_met(runs)} "
              f"(of {len(runs)} in {args.json})", flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
