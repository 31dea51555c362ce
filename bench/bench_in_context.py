"""In-context op timing against isolated op timing: which LUT predicts whole networks better?

Isolated: every op built and timed alone (the agent's protocol, its rounds included).
In context: every op timed inside whole random networks, by forward hooks at the block
boundaries (pytorch-cpu), so it runs with the caches and allocator state the network leaves it;
an op's value is the median over the networks it appears in of its per-pass median.

Both LUTs and the whole networks are timed in the same shuffled rounds (ops, networks with hooks,
networks without), so a change of machine speed hits all three alike and only the method
differs. The in-context LUT is built from the ``--fit`` networks (seed A); both LUTs then
predict ``--held`` other networks (seed B), raw and calibrated (the calibration fitted on the
seed-A networks, as the product fits it). Ops of a held-out network that no seed-A network ran
fall back to their isolated value; the coverage is printed.

    python bench/bench_in_context.py --space squeezenas-small -r 256x512 --json bench/results/in_context.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from lutcore.calibration import Calibration, Validation, summarize
from lutcore.spaces import Arch, get_chain_arch, get_space, parse_arch_list
from lutcore.torch import build_network, network_input
from lutcore.torch.network import Network
from profiler_agent.backends import get_backend
from profiler_agent.rounds import combine
from profiler_agent.session import ProfileSession
from profiler_agent.timing import TimingProtocol
from profiler_agent.validate import time_networks


def op_modules(net: torch.nn.Module) -> List[torch.nn.Module]:
    """The network's op modules in ``Arch.all_ops`` order: stem, chosen layers, head, decoder."""
    assert isinstance(net, Network), "a chain space's network (cell networks have no stem/layers/head)"
    mods = list(net.stem) + list(net.layers) + list(net.head)
    return mods + ([net.decoder] if net.decoder is not None else [])


def time_in_context(arch: Arch, seconds: float) -> Dict[str, List[float]]:
    """Per op key, the op's median ms over the passes of ``seconds`` of hooked forwards."""
    net = build_network(arch).eval()
    x = network_input(arch)
    ops = arch.all_ops()
    mods = op_modules(net)
    assert len(mods) == len(ops), f"{arch.name}: {len(mods)} modules for {len(ops)} ops"
    stamps: List[float] = [0.0] * len(mods)
    per_pass: List[List[float]] = [[] for _ in mods]
    handles = []
    for i, m in enumerate(mods):
        def pre(_m: Any, _inp: Any, i: int = i) -> None:
            stamps[i] = time.perf_counter()

        def post(_m: Any, _inp: Any, _out: Any, i: int = i) -> None:
            per_pass[i].append((time.perf_counter() - stamps[i]) * 1e3)

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        with torch.inference_mode():
            for _ in range(3):
                net(x)
            for p in per_pass:
                p.clear()
            t_end = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < t_end or n < 5:
                net(x)
                n += 1
    finally:
        for h in handles:
            h.remove()
    out: Dict[str, List[float]] = {}
    for (_, spec), times in zip(ops, per_pass):
        out.setdefault(spec.key, []).append(statistics.median(times))
    return out


def errors(lut: Dict[str, float], archs: List[Arch], measured: Dict[str, float]) -> List[Validation]:
    return [Validation(a.name, sum(lut[s.key] for _, s in a.all_ops()), measured[a.name], len(a.all_ops()))
            for a in archs]


def report(name: str, fit: List[Validation], held: List[Validation]) -> Dict[str, Any]:
    cal = Calibration.select(fit)
    raw = summarize([v.error for v in held])
    calibrated = summarize([cal.error(v) for v in held])
    print(f"   {name:12s} raw median {100 * raw['median_abs_error']:5.2f}% max {100 * raw['max_abs_error']:5.2f}%   "
          f"calibrated ({cal.model}) median {100 * calibrated['median_abs_error']:5.2f}% "
          f"max {100 * calibrated['max_abs_error']:5.2f}%", flush=True)
    return {"raw": raw, "calibrated": calibrated, "calibration": cal.to_dict()}


def run(args: argparse.Namespace) -> Dict[str, Any]:
    sp = get_space(args.space, args.resolution)
    fit_archs = [get_chain_arch(n, sp.resolution) for n in parse_arch_list(f"random:{args.fit}", sp.name, args.seed)]
    held_archs = [get_chain_arch(n, sp.resolution) for n in parse_arch_list(f"random:{args.held}", sp.name,
                                                                        args.seed + args.fit)]  # disjoint
    every = fit_archs + held_archs
    specs = {s.key: s for a in every for _, s in a.all_ops()}
    op_protocol = TimingProtocol(max_time_s=args.op_time)
    net_protocol = TimingProtocol(max_time_s=args.net_time)
    isolated: Dict[str, List[float]] = {}
    context: Dict[str, Dict[str, List[float]]] = {}  # key -> arch -> per-round medians
    nets: Dict[str, List[float]] = {a.name: [] for a in every}
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    with get_backend("pytorch-cpu", threads=args.threads) as backend:
        session = ProfileSession(backend, op_protocol, canary_every=0, seed=args.seed)
        for r in range(args.rounds):
            for m in session.run(list(specs.values())):
                isolated.setdefault(m.op.key, []).append(m.stats.median_ms)
            order = list(fit_archs)
            rng.shuffle(order)
            for a in order:
                for key, values in time_in_context(a, args.net_time).items():
                    context.setdefault(key, {}).setdefault(a.name, []).append(statistics.median(values))
            for name, times in time_networks(every, backend, net_protocol, 1, args.seed + r).items():
                nets[name] += times
            print(f"   round {r + 1}/{args.rounds} done ({time.monotonic() - t0:.0f}s)", flush=True)
    iso = {k: combine(v, "fast-half") for k, v in isolated.items()}
    ctx = {k: statistics.median(combine(v, "fast-half") for v in per_arch.values()) for k, per_arch in context.items()}
    covered = sum(1 for a in held_archs for _, s in a.all_ops() if s.key in ctx)
    total = sum(len(a.all_ops()) for a in held_archs)
    ctx_full = {k: ctx.get(k, iso[k]) for k in iso}
    measured = {n: combine(v, "fast-half") for n, v in nets.items()}
    print(f"\n== {sp.name} @ {sp.resolution_str}, pytorch-cpu {args.threads} thread(s): {len(specs)} ops, "
          f"{len(fit_archs)} fit + {len(held_archs)} held-out networks, {args.rounds} rounds, "
          f"{time.monotonic() - t0:.0f}s; in-context values cover {covered}/{total} held-out op uses")
    ratio = statistics.median(ctx[k] / iso[k] for k in ctx)
    print(f"   in-context / isolated, median over ops: {ratio:.3f}")
    out = {"space": sp.name, "resolution": sp.resolution_str, "threads": args.threads, "rounds": args.rounds,
           "ops": len(specs), "coverage": covered / total, "ctx_over_iso_median": ratio}
    out["isolated"] = report("isolated", errors(iso, fit_archs, measured), errors(iso, held_archs, measured))
    out["in_context"] = report("in context", errors(ctx_full, fit_archs, measured),
                               errors(ctx_full, held_archs, measured))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="squeezenas-small")
    p.add_argument("-r", "--resolution", default="256x512")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fit", type=int, default=20)
    p.add_argument("--held", type=int, default=12)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--op-time", type=float, default=0.25)
    p.add_argument("--net-time", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=7000)
    p.add_argument("--repeat", type=int, default=1, help="repeat the whole experiment (new seeds each time)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    results: List[Dict[str, Any]] = []
    for i in range(args.repeat):
        results.append(run(argparse.Namespace(**dict(vars(args), seed=args.seed + 100 * i))))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
