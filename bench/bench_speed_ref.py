"""Does the speed reference make network times from different processes and moments comparable?

The product's path times ops in one process (``profile``), the calibration's networks in a second
(``validate --calibrate``) and the architectures it is scored on in a third, minutes apart. Each
process calibrates its own reference base (``SpeedReference.calibrate``: the fastest window median
over 3 s) and divides every sample by ``1 + sensitivity * (slowdown - 1)``. A process whose base or
sensitivity is off shifts all its times alike, which a calibration fitted in another process cannot
see. This bench measures that directly, for each thread count:

- ``--procs`` fresh processes one after another, each timing one network ``--reps`` times;
- between them, one long-lived process timing the same network (the same base throughout);

every sample raw (sensitivity 0) beside the reference's slowdown around it and the process's base.
Offline it recomputes the corrected times for several sensitivities, each with the process's own
base and with one base shared by all processes, and prints their spread: over time within the
long-lived process, and across the fresh ones. The lower, the more comparable.

    python bench/bench_speed_ref.py --threads 1 2 --json bench/results/speed_ref_cpu.json
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
SENSITIVITIES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)


def worker(threads: int, arch_name: str, res: str, reps: int, serve: bool) -> None:
    """Time the network ``reps`` times per request; one JSON line per timing on stdout."""
    sys.path.insert(0, str(REPO))
    from lutcore.spaces import get_arch
    from profiler_agent.backends import get_backend
    from profiler_agent.timing import TimingProtocol

    b = get_backend("pytorch-cpu", threads=threads)
    ref = b.use_speed_reference(sensitivity=0.0)  # samples stay raw; the slowdown is still recorded
    base = ref.base_per_call_s  # seconds per reference call: comparable across processes
    assert base is not None, "use_speed_reference calibrates the reference"
    arch = get_arch(arch_name, res)
    protocol = TimingProtocol(max_time_s=1.5)

    def rep() -> None:
        for _ in range(reps):
            r = b.time_network(arch, protocol)
            print(json.dumps({"raw_ms": r.stats.median_ms, "slowdown": r.slowdown, "base_us": 1e6 * base,
                              "at": time.time()}), flush=True)

    if not serve:
        rep()
        return
    print("ready", flush=True)
    for _ in sys.stdin:
        rep()
        print("done", flush=True)


def _spawn(threads: int, args: argparse.Namespace, serve: bool) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--arch", args.arch, "-r", args.res,
           "--reps", str(args.reps)] + (["--serve"] if serve else [])
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _lines(stream: Any, until: Optional[str]) -> List[Dict[str, Any]]:
    out = []
    for line in stream:
        if until is not None and line.strip() == until:
            break
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def collect(threads: int, args: argparse.Namespace) -> Dict[str, List[Dict[str, Any]]]:
    long_lived = _spawn(threads, args, serve=True)
    assert long_lived.stdin is not None and long_lived.stdout is not None
    long_lived.stdout.readline()  # "ready"
    steady: List[Dict[str, Any]] = []
    fresh: List[Dict[str, Any]] = []
    for i in range(args.procs):
        long_lived.stdin.write("go\n")
        long_lived.stdin.flush()
        steady += [dict(r, proc=0) for r in _lines(long_lived.stdout, "done")]
        p = _spawn(threads, args, serve=False)
        out, _ = p.communicate()
        fresh += [dict(r, proc=i + 1) for r in _lines(out.splitlines(), None)]
        print(f"   threads {threads}: {i + 1}/{args.procs} fresh processes", flush=True)
    long_lived.stdin.close()
    long_lived.wait()
    return {"long_lived": steady, "fresh": fresh}


def corrected(rows: List[Dict[str, Any]], s: float, shared_base_us: Optional[float]) -> List[float]:
    """Each row's network time as a run with sensitivity ``s`` would have stored it; with
    ``shared_base_us`` as if every process had used that base instead of its own."""
    out = []
    for r in rows:
        f = r["slowdown"] * (r["base_us"] / shared_base_us if shared_base_us else 1.0)
        out.append(r["raw_ms"] / (1.0 + s * (f - 1.0)))
    return out


def spread(values: List[float]) -> Dict[str, float]:
    """Relative range and coefficient of variation of per-process (or per-moment) medians."""
    m = statistics.median(values)
    return {"range": (max(values) - min(values)) / m, "cv": statistics.pstdev(values) / statistics.fmean(values)}


def by_proc(rows: List[Dict[str, Any]], values: List[float]) -> List[float]:
    groups: Dict[int, List[float]] = {}
    for r, v in zip(rows, values):
        groups.setdefault(r["proc"], []).append(v)
    return [statistics.median(g) for g in groups.values()]


def analyse(data: Dict[str, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    shared = statistics.median(r["base_us"] for r in data["fresh"] + data["long_lived"])
    out = []
    for s in SENSITIVITIES:
        steady = spread(corrected(data["long_lived"], s, None))
        own = spread(by_proc(data["fresh"], corrected(data["fresh"], s, None)))
        common = spread(by_proc(data["fresh"], corrected(data["fresh"], s, shared)))
        out.append({"sensitivity": s, "long_lived": steady, "fresh_own_base": own, "fresh_shared_base": common})
    return out


def process_fit(data: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    """The sensitivity the long-lived process's own timings ask for (the agent's per-session fit,
    ``--speed-sensitivity auto``), and how well it aligns the fresh processes beside the best share."""
    from profiler_agent.timing.sensitivity import DEFAULT_SENSITIVITY, GRID, fit_sensitivity

    fit = fit_sensitivity([[(r["raw_ms"], r["slowdown"]) for r in data["long_lived"]]], applied=0.0, min_items=1)
    shared = statistics.median(r["base_us"] for r in data["fresh"] + data["long_lived"])

    def fresh_cv(s: float) -> float:
        return spread(by_proc(data["fresh"], corrected(data["fresh"], s, shared)))["cv"]

    best = min(GRID, key=fresh_cv)
    return {"fitted_s": fit.s, "fitted": fit.fitted, "reason": fit.reason, "fresh_cv_at_fit": fresh_cv(fit.s),
            "best_s": best, "fresh_cv_at_best": fresh_cv(best), "fresh_cv_at_default": fresh_cv(DEFAULT_SENSITIVITY)}


def print_fit(threads: int, f: Dict[str, Any]) -> None:
    print(f"   fitted in the long-lived process: s = {f['fitted_s']:.2f} ({f['reason']}); fresh processes, shared "
          f"base: cv {100 * f['fresh_cv_at_fit']:.1f}% at it, {100 * f['fresh_cv_at_default']:.1f}% at the default, "
          f"{100 * f['fresh_cv_at_best']:.1f}% at the best share ({f['best_s']:.2f})", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--procs", type=int, default=8, help="fresh processes per thread count (8)")
    p.add_argument("--reps", type=int, default=2, help="network timings per process and turn (2)")
    p.add_argument("--arch", default="squeezenas-small:random:5001")
    p.add_argument("-r", "--res", default="256x512")
    p.add_argument("--json")
    p.add_argument("--reanalyse", nargs="+", metavar="JSON", help="print the per-process fit of earlier runs' files")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.threads[0], args.arch, args.res, args.reps, args.serve)
        return 0
    if args.reanalyse:
        for name in args.reanalyse:
            print(f"== {name}")
            for res in json.loads(Path(name).read_text())["results"]:
                print(f"  {res['threads']} thread(s):")
                print_fit(res["threads"], process_fit(res["data"]))
        return 0
    print(f"bench_speed_ref: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {args.arch} at {args.res}, "
          f"{args.procs} fresh processes x {args.reps} timings, one long-lived process between them")
    results = []
    for threads in args.threads:
        data = collect(threads, args)
        rows = analyse(data)
        bases = sorted(r["base_us"] for r in data["fresh"])
        print(f"== {threads} thread(s): reference base per call over the fresh processes "
              f"{bases[0]:.0f}-{bases[-1]:.0f} us")
        print("   sensitivity   long-lived over time   fresh, own base   fresh, shared base   (range / cv)")
        for r in rows:
            ll, own, common = r["long_lived"], r["fresh_own_base"], r["fresh_shared_base"]
            print(f"   {r['sensitivity']:11.2f}   {100 * ll['range']:8.1f}% / {100 * ll['cv']:4.1f}%"
                  f"   {100 * own['range']:7.1f}% / {100 * own['cv']:4.1f}%"
                  f"   {100 * common['range']:9.1f}% / {100 * common['cv']:4.1f}%", flush=True)
        fit = process_fit(data)
        print_fit(threads, fit)
        results.append({"threads": threads, "data": data, "analysis": rows, "process_fit": fit})
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
