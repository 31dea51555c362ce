"""Does a memory-bound reference, or a small canary network, explain what the compute reference misses?

The speed reference is a 32x28x28 conv that stays in L2: it feels a busy SMT sibling and a slow host,
not a neighbour that saturates memory bandwidth. On a noisy evening (stop 18) one network's round
medians, corrected by it, still split into two modes 10-15% apart within one process. If those modes
are memory contention, a reference that streams through DRAM should see them.

One process per thread count: time one network ``--reps`` times (each ``--net-time`` s, raw:
sensitivity 0, the compute reference's slowdown recorded beside it), and right before and after each
timing copy ``--mem-mb`` MB and time a small canary network (``--canary`` at ``--canary-res``).
Offline, least squares of log(network time) on nothing, on log(compute slowdown), on the memory
one, on the canary's time, and on pairs; it prints the residual spread each leaves (what a
correction built on those references could not remove) and the fitted exponents.

    python bench/bench_two_refs.py --threads 1 2 --json bench/results/two_refs_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def collect(threads: int, args: argparse.Namespace) -> List[Dict[str, float]]:
    import torch

    from lutcore.spaces import get_arch
    from profiler_agent.backends import get_backend
    from profiler_agent.timing import TimingProtocol

    b = get_backend("pytorch-cpu", threads=threads)
    ref = b.use_speed_reference(sensitivity=0.0)  # samples stay raw; the slowdown is still recorded
    ref.every_s = args.every  # work timed between two reference samples
    arch = get_arch(args.arch, args.res)
    protocol = TimingProtocol(max_time_s=args.net_time)
    canary = get_arch(args.canary, args.canary_res)
    canary_protocol = TimingProtocol(max_time_s=args.canary_time)

    def canary_ms() -> float:
        return b.time_network(canary, canary_protocol).stats.median_ms

    src = torch.ones(args.mem_mb * 2 ** 20 // 4)
    dst = torch.empty_like(src)

    def copy_s() -> float:
        t0 = time.perf_counter()
        dst.copy_(src)
        return time.perf_counter() - t0

    def mem() -> float:
        return statistics.median(copy_s() for _ in range(3))

    for _ in range(3):
        copy_s()
    mem_base = min(copy_s() for _ in range(20))
    rows = []
    canary_ms()
    for i in range(args.reps):
        before, c_before = mem(), canary_ms()
        r = b.time_network(arch, protocol)
        after, c_after = mem(), canary_ms()
        rows.append({"raw_ms": r.stats.median_ms, "compute": float(r.slowdown or 1.0),
                     "memory": 0.5 * (before + after) / mem_base, "canary_ms": 0.5 * (c_before + c_after),
                     "at": time.time()})
        if (i + 1) % 10 == 0:
            print(f"   threads {threads}: {i + 1}/{args.reps} timings", flush=True)
    b.close()
    return rows


def analyse(rows: List[Dict[str, float]]) -> Dict[str, Any]:
    y = np.log([r["raw_ms"] for r in rows])
    c = np.log([r["compute"] for r in rows])
    m = np.log([r["memory"] for r in rows])
    k = np.log([r["canary_ms"] for r in rows])
    one = np.ones_like(y)
    out: Dict[str, Any] = {}
    for name, cols in (("none", [one]), ("compute", [one, c]), ("memory", [one, m]), ("both", [one, c, m]),
                       ("canary", [one, k]), ("compute+canary", [one, c, k])):
        x = np.stack(cols, axis=1)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ coef
        out[name] = {"resid_sd": float(resid.std(ddof=len(cols))), "exponents": [float(v) for v in coef[1:]]}
    out["corr_compute_memory"] = float(np.corrcoef(c, m)[0, 1]) if c.std() > 0 and m.std() > 0 else None
    out["memory_range"] = [float(np.exp(m.min())), float(np.exp(m.max()))]
    out["compute_range"] = [float(np.exp(c.min())), float(np.exp(c.max()))]
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=60, help="network timings per thread count (60)")
    p.add_argument("--net-time", type=float, default=0.5, help="seconds per network timing (validate's 0.5)")
    p.add_argument("--mem-mb", type=int, default=64, help="MB the memory reference copies (64, past every cache)")
    p.add_argument("--arch", default="squeezenas-small:random:5021")
    p.add_argument("--canary", default="squeezenas-small:random:5000",
                   help="a second network timed right before and after each timing: does it track the first?")
    p.add_argument("--canary-res", default="128x256")
    p.add_argument("--canary-time", type=float, default=0.1, help="seconds per canary timing (0.1)")
    p.add_argument("-r", "--res", default="256x512")
    p.add_argument("--every", type=float, default=0.05,
                   help="seconds of work between two compute-reference samples (the agent's 0.05)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    print(f"bench_two_refs: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {args.arch} at {args.res}, "
          f"{args.reps} timings of {args.net_time} s, memory reference {args.mem_mb} MB, compute reference every "
          f"{1e3 * args.every:.0f} ms", flush=True)
    results = []
    for threads in args.threads:
        rows = collect(threads, args)
        a = analyse(rows)
        print(f"== {threads} thread(s): compute slowdown {a['compute_range'][0]:.2f}-{a['compute_range'][1]:.2f}, "
              f"memory slowdown {a['memory_range'][0]:.2f}-{a['memory_range'][1]:.2f}, "
              f"their correlation {a['corr_compute_memory']:.2f}")
        for name in ("none", "compute", "memory", "both", "canary", "compute+canary"):
            e = ", ".join(f"{v:.2f}" for v in a[name]["exponents"])
            print(f"   residual sd of log(network) explained by {name:14s} {100 * a[name]['resid_sd']:5.2f}%"
                  + (f"   exponents {e}" if e else ""), flush=True)
        results.append({"threads": threads, "rows": rows, "analysis": a})
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
