"""LUT truth on this machine: how well LUT sums predict whole networks, before and after calibration.

For each backend configuration and space: time every op the chosen architectures deploy and
every whole network in the same shuffled rounds (ops, then networks, each round), each sample
divided by the machine's slowdown a reference conv measures around it (``--no-speed-ref`` to
turn that off), rounds combined by the mean of their faster half. Then choose and fit the
calibration (identity, scale or affine, by leave-one-out) on half of the random architectures
and score it on the other half plus the published networks. Prints one table per (backend,
space) and a summary.

    python bench/bench_lut_truth.py                       # the issue's full matrix (~65 min on 2 cores)
    python bench/bench_lut_truth.py --quick               # a smoke run (~2 min)
    python bench/bench_lut_truth.py --json out.json       # also write every figure
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List

from lutcore.calibration import Calibration, summarize
from lutcore.spaces import get_space, parse_arch_list
from profiler_agent.backends import get_backend
from profiler_agent.rounds import RoundPlan
from profiler_agent.session import ProfileSession
from profiler_agent.timing import TimingProtocol
from profiler_agent.validate import split_for_calibration, validate_interleaved

# Rounds per configuration unless --rounds says otherwise: with both cores busy the machine's
# slowdowns hit every sample, and 5 rounds left the median held-out error at 3.3% (7 give 1.7-2.9%).
ROUNDS = {"pytorch-cpu:2": 7}
CONFIGS = [
    ("pytorch-cpu", {"threads": 1}),
    ("pytorch-cpu", {"threads": 2}),
    ("onnxruntime", {"threads": 1}),
]
SPACES = [("squeezenas-small", "256x512"), ("squeezenas-large", "256x512"), ("tfnas", "224x224")]


def add_retime_flags(p: argparse.ArgumentParser) -> None:
    """Extra rounds for networks whose kept rounds disagree (profiler_agent.validate.retime_disturbed)."""
    p.add_argument("--spread-tol", type=float, default=RoundPlan.spread_tol,
                   help="a network whose kept rounds differ by more than this gets an extra round "
                        f"({RoundPlan.spread_tol})")
    p.add_argument("--max-extra-rounds", type=int, default=RoundPlan.max_extra,
                   help=f"extra rounds at most per network ({RoundPlan.max_extra})")


def pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:5.2f}%"


def run_one(backend_name: str, opts: Dict[str, Any], space: str, res: str, args: argparse.Namespace) -> Dict[str, Any]:
    rounds = args.rounds or ROUNDS.get(f"{backend_name}:{opts['threads']}", 5)
    sp = get_space(space, res)
    names = parse_arch_list(f"published,random:{args.random}", sp.name, args.seed)
    op_protocol = TimingProtocol(ci=args.ci, max_time_s=args.op_time)
    net_protocol = TimingProtocol(ci=args.ci, max_time_s=args.net_time)
    t0 = time.monotonic()
    with get_backend(backend_name, **opts) as backend:
        if args.speed_ref:
            backend.use_speed_reference(sensitivity=args.sensitivity)
        target = backend.target("cpu")
        session = ProfileSession(backend, op_protocol, canary_every=20, drift_tol=0.05, seed=args.seed)
        lut, results = validate_interleaved(sp.name, res, names, backend, session, net_protocol,
                                            rounds=rounds, seed=args.seed, target=target.id,
                                            estimator=args.estimator, spread_tol=args.spread_tol,
                                            max_extra=args.max_extra_rounds)
    t_all = time.monotonic() - t0
    fit, held = split_for_calibration(results, seed=args.seed)
    cal = Calibration.select([r.validation() for r in fit])
    raw_all = summarize([r.error for r in results])
    raw_held = summarize([r.error for r in held])
    cal_held = summarize([cal.error(r.validation()) for r in held])
    print(f"\n== {target.id}  {sp.name} @ {res}: {len(lut.values)} ops, "
          f"{len(results)} networks x {rounds} rounds ({args.estimator}), {t_all:.0f}s total")
    print(f"   {'arch':28s} {'kind':9s} {'LUT sum':>9s} {'measured':>9s} {'raw err':>8s} {'cal err':>8s}      "
          f"{'spread':>7s} extra")
    for r in results:
        tag = "fit" if r in fit else "held"
        print(f"   {r.arch:28s} {r.kind:9s} {r.predicted_ms:9.3f} {r.measured_ms:9.3f} {100 * r.error:+7.2f}% "
              f"{100 * cal.error(r.validation()):+7.2f}% {tag:4s} {100 * (r.spread or 0):6.2f}% {r.extra_rounds:5d}")
    cv = ", ".join(f"{k} {100 * v:.2f}%" for k, v in (cal.cv_error or {}).items())
    print(f"   calibration {cal.model}: a={cal.a:.4f} b={cal.b:.4f} ms (fitted on {len(fit)} random archs; "
          f"leave-one-out RMS error {cv})")
    print(f"   raw (all {raw_all['n']}):        median |err| {pct(raw_all['median_abs_error'])}, "
          f"max {pct(raw_all['max_abs_error'])}")
    print(f"   raw (held-out {raw_held['n']}):   median |err| {pct(raw_held['median_abs_error'])}, "
          f"max {pct(raw_held['max_abs_error'])}")
    print(f"   calibrated (held-out):  median |err| {pct(cal_held['median_abs_error'])}, "
          f"max {pct(cal_held['max_abs_error'])}, within 5% {pct(cal_held['within_5pct'])}, "
          f"within 10% {pct(cal_held['within_10pct'])}")
    sys.stdout.flush()
    return {
        "target": target.id, "space": sp.name, "resolution": res, "ops": len(lut.values), "seconds": t_all,
        "calibration": cal.to_dict(), "raw_all": raw_all, "raw_heldout": raw_held, "calibrated_heldout": cal_held,
        "results": [dict(r.to_dict(), fit=r in fit) for r in results],
        "speed_ref": args.speed_ref, "sensitivity": args.sensitivity, "estimator": args.estimator, "rounds": rounds,
        "spread_tol": args.spread_tol, "max_extra_rounds": args.max_extra_rounds,
        "extra_rounds": sum(r.extra_rounds for r in results),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--random", type=int, default=30, help="random architectures per space (default 30)")
    p.add_argument("--rounds", type=int, default=None,
                   help="timing rounds (default 5; 7 for pytorch-cpu with 2 threads)")
    p.add_argument("--estimator", choices=["fast-half", "min", "median"], default="fast-half",
                   help="how rounds combine")
    add_retime_flags(p)
    p.add_argument("--ci", type=float, default=0.01)
    p.add_argument("--op-time", type=float, default=0.25, help="time budget per op per round (s)")
    p.add_argument("--net-time", type=float, default=0.5, help="time budget per network per round (s)")
    p.add_argument("--no-speed-ref", dest="speed_ref", action="store_false",
                   help="do not divide out the machine's slowdown measured by a reference conv")
    p.add_argument("--sensitivity", type=float, default=0.5, help="share of the reference's slowdown ops feel")
    p.add_argument("--seed", type=int, default=1000, help="seed of the random architectures")
    p.add_argument("--quick", action="store_true", help="one config, one space, 6 random archs")
    p.add_argument("--config", action="append", help="only these, e.g. pytorch-cpu:1 onnxruntime:1")
    p.add_argument("--space", action="append", help="only these spaces")
    p.add_argument("--json", help="write all figures to this file")
    args = p.parse_args()
    configs = [(b, o) for b, o in CONFIGS if not args.config or f"{b}:{o['threads']}" in args.config]
    spaces = [(s, r) for s, r in SPACES if not args.space or s in args.space]
    if args.quick:
        configs, spaces = configs[:1], [("squeezenas-small", "128x256")]
        args = argparse.Namespace(**dict(vars(args), random=6, op_time=0.3, net_time=0.3, rounds=2))
    out: List[Dict[str, Any]] = []
    for backend_name, opts in configs:
        for space, res in spaces:
            out.append(run_one(backend_name, opts, space, res, args))
    print("\n== summary (calibrated error on held-out architectures; raw error on all)")
    print(f"{'target':34s} {'space':18s} {'raw med':>8s} {'raw max':>8s} {'cal med':>8s} {'cal max':>8s} {'<=10%':>6s}")
    for o in out:
        print(f"{o['target']:34s} {o['space']:18s} {pct(o['raw_all']['median_abs_error']):>8s} "
              f"{pct(o['raw_all']['max_abs_error']):>8s} {pct(o['calibrated_heldout']['median_abs_error']):>8s} "
              f"{pct(o['calibrated_heldout']['max_abs_error']):>8s} {pct(o['calibrated_heldout']['within_10pct']):>6s}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
