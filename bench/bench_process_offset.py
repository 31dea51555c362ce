"""How far apart do two ``validate`` processes land, as a whole, and does a setting bring them closer?

The workflow bench's misses are whole-process offsets: a calibration fitted on one ``validate``
process and scored on the next is off by that process pair's difference (docs/agent.md, "Stop 18").
This bench measures the offset directly and cheaply. ``--procs`` fresh processes one after another
each time the same ``--nets`` networks as ``validate`` does (shuffled rounds, extra rounds for
disturbed networks, the fitted speed sensitivity, the fast-half of the rounds), with one speed base
shared by all. The processes alternate between the ``--every`` settings (the reference's spacing),
so both see the same evening. For each setting, a two-way split of log(time) into a network effect
and a process effect gives the process effect's spread (``tau``): what separates a calibration from
the architectures it is scored on. ``within`` is what the networks' own noise alone would leave in
a process effect (residual sd / sqrt(nets)); ``tau`` well above it is a real offset.

``--passes 2`` times the networks twice in each process: passes of one process that differ as much
as consecutive processes do mean the offset drifts with time, not with the process. Each row keeps
its raw rounds and their slowdowns, so the networks are also re-corrected offline with each fixed
share (``SHARES``) beside the share each process fitted: which setting keeps processes level.
``--anchors K`` times K of the networks' own ops after each round, to test whether dividing by
them (the LUT's ops, re-timed in the same process) removes the offset.

    python bench/bench_process_offset.py --threads 2 1 --procs 8 --nets 8 --passes 2 --every 0.05
    python bench/bench_process_offset.py --reanalyse bench/results/offset_cpu_passes_run1.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
SHARES = (0.5, 0.75, 1.0)  # fixed sensitivities the stored rounds are re-corrected with


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from lutcore.spaces import get_arch, get_space
    from lutcore.spaces.architectures import parse_arch_list
    from profiler_agent.backends import get_backend
    from profiler_agent.rounds import NETWORK_MAX_EXTRA, NETWORK_SPREAD_TOL, RoundPlan
    from profiler_agent.speed_base import SpeedBases
    from profiler_agent.timing import TimingProtocol
    from profiler_agent.timing.sensitivity import session_fit
    from profiler_agent.validate import _Ticker, _time_pass, retime_disturbed

    if args.pin is not None:  # one vCPU: does the core a process lands on set its speed?
        os.sched_setaffinity(0, {args.pin})
    b = get_backend("pytorch-cpu", threads=args.threads[0])
    ref = b.use_speed_reference(sensitivity="auto", bases=SpeedBases(Path(args.bases)))
    ref.every_s = args.every[0]
    sp = get_space(args.space, args.res)
    archs = [get_arch(n, sp.resolution) for n in parse_arch_list(f"random:{args.nets}", sp.name, args.seed)]
    plan = RoundPlan(args.rounds, "fast-half", NETWORK_SPREAD_TOL, NETWORK_MAX_EXTRA)
    net_protocol, op_protocol = TimingProtocol(max_time_s=0.5), TimingProtocol(max_time_s=args.anchor_time)
    specs: Dict[str, Any] = {}
    for a in archs:
        for _, spec in a.all_ops():
            specs.setdefault(spec.key, spec)
    keys = sorted(specs)
    random.Random(args.seed).shuffle(keys)
    anchors = [specs[key] for key in keys[:args.anchors]]
    for k in range(args.passes):  # the same networks again in the same process: time drift, not the process
        slowdowns: Dict[str, List[Optional[float]]] = {}
        anchor_ms: Dict[str, List[float]] = {s.key: [] for s in anchors}
        anchor_slow: Dict[str, List[Optional[float]]] = {s.key: [] for s in anchors}
        times: Dict[str, List[float]] = {a.name: [] for a in archs}
        tick = _Ticker(0, None)
        for r in range(args.rounds):  # as time_networks does, with the anchor ops after each round's networks
            order = list(archs)
            random.Random(args.seed + 101 * k + r).shuffle(order)
            _time_pass(order, b, net_protocol, times, tick, slowdowns=slowdowns)
            for spec in anchors:
                m = b.time_op(spec, op_protocol)
                anchor_ms[spec.key].append(m.stats.median_ms)
                anchor_slow[spec.key].append(m.slowdown)
        retime_disturbed(archs, times, plan, b, net_protocol, args.seed + 101 * k + args.rounds, tick,
                         slowdowns=slowdowns)
        fit = session_fit(ref, [list(zip(times[a.name], slowdowns[a.name])) for a in archs])
        fitted = times if fit is None else {n: [fit.value(v, f) for v, f in zip(ts, slowdowns[n])]
                                            for n, ts in times.items()}
        print(json.dumps({"every": ref.every_s, "pass": k, "s": fit.s if fit else None,
                          "ms": {n: combine(ts, "fast-half") for n, ts in fitted.items()},
                          "raw": times, "slowdowns": slowdowns, "applied": ref.sensitivity, "pin": args.pin,
                          "anchors": anchor_ms, "anchor_slowdowns": anchor_slow,
                          "base_us": 1e6 * (ref.base_per_call_s or 0.0)}), flush=True)


def collect(threads: int, args: argparse.Namespace, bases: str) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for i in range(args.procs):
        every = args.every[i % len(args.every)]
        pin = ["--pin", str((i // len(args.every)) % 2)] if args.alternate_cpus else []
        cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--every", str(every), "--space",
               args.space, "-r", args.res, "--nets", str(args.nets), "--seed", str(args.seed), "--rounds",
               str(args.rounds), "--passes", str(args.passes), "--anchors", str(args.anchors),
               "--anchor-time", str(args.anchor_time), "--bases", bases, *pin]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        got = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        rows += [dict(row, proc=i, at=time.time()) for row in got]
        print(f"   threads {threads}: {i + 1}/{args.procs} processes (every {every * 1e3:.0f} ms, "
              f"s {[row['s'] for row in got]}, {sum(len(v) for row in got for v in row['raw'].values())} network "
              "rounds)", flush=True)
    return rows


def combine(values: List[float], estimator: str) -> float:
    sys.path.insert(0, str(REPO))
    from profiler_agent.rounds import combine as agent_combine

    return agent_combine(values, estimator)


def at_share(rows: List[Dict[str, Any]], s: float) -> List[Dict[str, Any]]:
    """The rows as a fixed share ``s`` would have stored them, from their raw rounds and slowdowns."""
    sys.path.insert(0, str(REPO))
    from profiler_agent.timing.sensitivity import rescale

    def level(times: Dict[str, List[float]], slow: Dict[str, List[Optional[float]]], applied: float
              ) -> Dict[str, float]:
        return {k: combine([rescale(v, f or 1.0, applied, s) for v, f in zip(ts, slow[k])], "fast-half")
                for k, ts in times.items()}

    out = []
    for r in rows:
        anchors = r.get("anchors") or {}
        out.append(dict(r, ms=level(r["raw"], r["slowdowns"], r["applied"]),
                        anchors={k: [v] for k, v in level(anchors, r.get("anchor_slowdowns") or {},
                                                          r["applied"]).items()}))
    return out


def print_shares(rows: List[Dict[str, Any]]) -> Dict[str, float]:
    """tau under each fixed share beside the fitted one (rows with their raw rounds only)."""
    fitted = offsets(rows)
    out = {"fitted": fitted["tau"]}
    line = f"   tau: fitted per process {100 * fitted['tau']:.2f}"
    for s in SHARES:
        got = offsets(at_share(rows, s))
        out[str(s)] = got["tau"]
        line += f", fixed {s:.2f} {100 * got['tau']:.2f}" + (
            f" (anchored {100 * got['tau_anchored']:.2f})" if got["tau_anchored"] is not None else "")
    print(line, flush=True)
    return out


def offsets(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Two-way split of log(ms): the process effects' spread, and what the networks' noise leaves in it."""
    nets = sorted(rows[0]["ms"])
    logs = [[math.log(r["ms"][n]) for n in nets] for r in rows]
    net_eff = [statistics.fmean(col) for col in zip(*logs)]
    proc_eff = [statistics.fmean(v - e for v, e in zip(row, net_eff)) for row in logs]
    resid = [v - e - p for row, p in zip(logs, proc_eff) for v, e in zip(row, net_eff)]
    dof = max(1, (len(rows) - 1) * (len(nets) - 1))
    sd_resid = math.sqrt(sum(x * x for x in resid) / dof)
    pairs = [abs(a - b) for a, b in zip(proc_eff, proc_eff[1:])]
    same = [d for d, r0, r1 in zip(pairs, rows, rows[1:]) if r0["proc"] == r1["proc"]]
    other = [d for d, r0, r1 in zip(pairs, rows, rows[1:]) if r0["proc"] != r1["proc"]]
    anchored = None
    if rows[0].get("anchors"):
        keys = sorted(rows[0]["anchors"])
        alog = [[math.log(combine(r["anchors"][k], "fast-half")) for k in keys] for r in rows]
        a_eff = [statistics.fmean(v - e for v, e in zip(row, [statistics.fmean(c) for c in zip(*alog)]))
                 for row in alog]
        anchored = statistics.pstdev([p - a for p, a in zip(proc_eff, a_eff)])
    return {"tau": statistics.pstdev(proc_eff), "tau_anchored": anchored,
            "within": sd_resid / math.sqrt(len(nets)), "resid": sd_resid,
            "pair_mean": statistics.fmean(other) if other else 0.0, "pair_max": max(other) if other else 0.0,
            "same_process_pair_mean": statistics.fmean(same) if same else None, "effects": proc_eff}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--every", type=float, nargs="+", default=[0.05, 0.015], help="reference spacings to alternate (s)")
    p.add_argument("--procs", type=int, default=12, help="processes per thread count, alternating settings (12)")
    p.add_argument("--space", default="squeezenas-small")
    p.add_argument("-r", "--res", default="256x512")
    p.add_argument("--nets", type=int, default=6)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--passes", type=int, default=1, help="validate passes per process (1); 2 separates drift in "
                   "time from the process")
    p.add_argument("--alternate-cpus", action="store_true", help="pin each process to CPU 0 or 1, alternately (1 "
                   "thread)")
    p.add_argument("--anchors", type=int, default=0, help="LUT ops of the networks timed after each round (0)")
    p.add_argument("--anchor-time", type=float, default=0.1, help="seconds per anchor op timing (0.1)")
    p.add_argument("--json")
    p.add_argument("--pin", type=int, help=argparse.SUPPRESS)
    p.add_argument("--reanalyse", nargs="+", metavar="JSON",
                   help="print tau under fixed shares for earlier runs' files")
    p.add_argument("--bases", help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.reanalyse:
        for name in args.reanalyse:
            for res in json.loads(Path(name).read_text())["results"]:
                print(f"== {name}, {res['threads']} thread(s)")
                print_shares(res["rows"])
        return 0
    print(f"bench_process_offset: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {args.nets} networks of "
          f"{args.space} at {args.res}, {args.procs} processes per thread count, every {args.every}")
    results = []
    for threads in args.threads:
        with tempfile.TemporaryDirectory() as tmp:
            rows = collect(threads, args, str(Path(tmp) / "bases.json"))
        print(f"== {threads} thread(s): process effect, log scale (x100 ~ %)")
        by_setting = {}
        for every in args.every:
            got = offsets([r for r in rows if r["every"] == every])
            by_setting[str(every)] = got
            print(f"   every {every * 1e3:4.0f} ms: tau {100 * got['tau']:.2f}  within {100 * got['within']:.2f}  "
                  f"consecutive processes mean {100 * got['pair_mean']:.2f} max {100 * got['pair_max']:.2f}  "
                  + (f"anchored tau {100 * got['tau_anchored']:.2f}  " if got["tau_anchored"] is not None else "")
                  + (f"passes of one process mean {100 * got['same_process_pair_mean']:.2f}  "
                     if got["same_process_pair_mean"] is not None else "")
                  +
                  "effects " + " ".join(f"{100 * e:+.1f}" for e in got["effects"]), flush=True)
        if "raw" in rows[0] and len(args.every) == 1:
            by_setting["shares"] = print_shares(rows)
        results.append({"threads": threads, "rows": rows, "analysis": by_setting})
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
