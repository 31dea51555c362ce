"""Does a canary network, timed in the same process, remove the process-level offset the compute reference leaves?

The workflow bench's misses (docs/agent.md, "Stop 18") are whole-process offsets: every network of
one ``validate`` process runs 2.5-7% off those of another, after the compute reference's
correction. Within a second a canary timed beside a network explains little
(``bench_two_refs.py``), but an offset that lasts a whole process is slow drift, which a canary's
median over the process may follow. This bench runs ``--procs`` fresh processes one after
another; each times two networks (A and B) and a canary C in ``--rounds`` round-robin rounds, raw
beside the reference's slowdown. Offline it prints, for several sensitivities, the spread
(coefficient of variation) over processes of A's and B's per-process medians, alone and divided
by C's (``A/C``), and with C's exponent fitted on A and scored on B (``B/C^k``).

    python bench/bench_canary.py --threads 1 2 --json bench/results/canary_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
SENSITIVITIES = (0.0, 0.5, 0.75, 1.0)
ROLES = ("A", "B", "C")


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from lutcore.spaces import get_arch
    from profiler_agent.backends import get_backend
    from profiler_agent.timing import TimingProtocol

    b = get_backend("pytorch-cpu", threads=args.threads[0])
    ref = b.use_speed_reference(sensitivity=0.0)
    archs = {"A": get_arch(args.a, args.res), "B": get_arch(args.b, args.res),
             "C": get_arch(args.canary, args.canary_res)}
    protocols = {"A": TimingProtocol(max_time_s=args.time), "B": TimingProtocol(max_time_s=args.time),
                 "C": TimingProtocol(max_time_s=args.canary_time)}
    for k in ROLES:  # build and warm each once, untimed
        b.time_network(archs[k], TimingProtocol(max_time_s=0.2))
    base = ref.base_per_call_s
    assert base is not None, "use_speed_reference calibrates the reference"
    for rnd in range(args.rounds):
        for k in ROLES:
            r = b.time_network(archs[k], protocols[k])
            print(json.dumps({"role": k, "round": rnd, "raw_ms": r.stats.median_ms, "slowdown": r.slowdown,
                              "base_us": 1e6 * base, "at": time.time()}), flush=True)


def collect(threads: int, args: argparse.Namespace) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for i in range(args.procs):
        cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--a", args.a, "--b", args.b,
               "--canary", args.canary, "-r", args.res, "--canary-res", args.canary_res, "--rounds",
               str(args.rounds), "--time", str(args.time), "--canary-time", str(args.canary_time)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows += [dict(json.loads(line), proc=i) for line in out.splitlines() if line.startswith("{")]
        print(f"   threads {threads}: {i + 1}/{args.procs} processes", flush=True)
    return rows


def per_proc(rows: List[Dict[str, Any]], role: str, s: float, shared_us: float) -> Dict[int, float]:
    """Each process's median corrected time of ``role`` (shared reference base, sensitivity ``s``)."""
    groups: Dict[int, List[float]] = {}
    for r in rows:
        if r["role"] == role:
            f = r["slowdown"] * r["base_us"] / shared_us
            groups.setdefault(r["proc"], []).append(r["raw_ms"] / (1.0 + s * (f - 1.0)))
    return {p: statistics.median(v) for p, v in groups.items()}


def cv(values: List[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


def best_exponent(x: List[float], c: List[float]) -> float:
    """The k minimising the spread of x / c^k (least squares of log x on log c, through the mean)."""
    import math

    lx = [math.log(v) for v in x]
    lc = [math.log(v) for v in c]
    mx, mc = statistics.fmean(lx), statistics.fmean(lc)
    var = sum((v - mc) ** 2 for v in lc)
    return sum((a - mx) * (b - mc) for a, b in zip(lx, lc)) / var if var > 0 else 0.0


def analyse(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    shared = statistics.median(r["base_us"] for r in rows)
    out = []
    for s in SENSITIVITIES:
        m = {k: per_proc(rows, k, s, shared) for k in ROLES}
        procs = sorted(m["A"])
        a, b, c = ([m[k][p] for p in procs] for k in ROLES)
        k_a = best_exponent(a, c)
        out.append({"sensitivity": s, "cv_A": cv(a), "cv_B": cv(b), "cv_C": cv(c),
                    "cv_A_over_C": cv([x / y for x, y in zip(a, c)]), "cv_B_over_C": cv([x / y for x, y in zip(b, c)]),
                    "k_fitted_on_A": k_a, "cv_B_over_C_k": cv([x / y ** k_a for x, y in zip(b, c)])})
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--procs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--a", default="squeezenas-small:random:5001")
    p.add_argument("--b", default="squeezenas-large:random:7")
    p.add_argument("--canary", default="squeezenas-small:random:5000")
    p.add_argument("-r", "--res", default="256x512")
    p.add_argument("--canary-res", default="128x256")
    p.add_argument("--time", type=float, default=1.0, help="seconds per A or B timing (1.0)")
    p.add_argument("--canary-time", type=float, default=0.5, help="seconds per canary timing (0.5)")
    p.add_argument("--json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    print(f"bench_canary: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, A {args.a}, B {args.b} at "
          f"{args.res}, canary {args.canary} at {args.canary_res}; {args.procs} processes x {args.rounds} rounds")
    results = []
    for threads in args.threads:
        rows = collect(threads, args)
        table = analyse(rows)
        print(f"== {threads} thread(s): spread (cv) of per-process medians")
        print("   sensitivity     A      B      C    A/C    B/C   k(A)  B/C^k")
        for t in table:
            print(f"   {t['sensitivity']:11.2f} " + " ".join(f"{100 * t[key]:5.1f}%" for key in
                  ("cv_A", "cv_B", "cv_C", "cv_A_over_C", "cv_B_over_C"))
                  + f" {t['k_fitted_on_A']:5.2f} {100 * t['cv_B_over_C_k']:5.1f}%", flush=True)
        results.append({"threads": threads, "rows": rows, "analysis": table})
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
