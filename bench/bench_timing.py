"""Repeatability and cost of the timing protocol.

Times a seeded sample of a space's unique ops twice, each pass with a fresh backend and its own
shuffled order (ProfileSession, canary on), and prints per op and overall: median |difference|
between the passes, wall time per op, wall time over time inside timed samples, samples and
forward passes per op next to TF-NAS's fixed protocol (100 warm-up + 1,000 timed runs).

    python bench/bench_timing.py --backend pytorch-cpu --space squeezenas-small --resolution 256x512 --ops 12
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lutcore.spaces import get_chain_space  # noqa: E402
from profiler_agent.backends import get_backend  # noqa: E402
from profiler_agent.session import ProfileSession  # noqa: E402
from profiler_agent.timing import TimingProtocol, quantile  # noqa: E402

TFNAS_FORWARDS = 100 + 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="pytorch-cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cuda-graphs", action="store_true")
    ap.add_argument("--space", default="squeezenas-small")
    ap.add_argument("--resolution", default="128x256")
    ap.add_argument("--ops", type=int, default=10, help="how many unique ops to sample (0 = all)")
    ap.add_argument("--ci", type=float, default=0.01)
    ap.add_argument("--max-time", type=float, default=2.0, help="per-op time budget, seconds")
    ap.add_argument("--canary-every", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixed", action="store_true",
                    help="also time each op with TF-NAS's fixed protocol and compare cost and medians")
    a = ap.parse_args()

    space = get_chain_space(a.space, a.resolution)
    ops = [s for s in space.unique_ops().values() if not s.is_identity]
    ops += [f.spec for f in space.fixed]
    pairs = sum(not bad for row in space.mask() for bad in row)
    print(f"{a.space} @ {a.resolution}: {len(space.unique_ops())} unique searchable ops for {pairs} "
          f"(layer, candidate) pairs; {len(space.fixed)} fixed ops")
    if a.ops:
        ops = random.Random(a.seed).sample(ops, min(a.ops, len(ops)))
    options: Dict[str, object] = {"precision": a.precision}
    if a.threads is not None:
        options["threads"] = a.threads
    if a.cuda_graphs:
        options["cuda_graphs"] = True
    protocol = TimingProtocol(ci=a.ci, max_time_s=a.max_time)

    runs: List[Dict[str, Any]] = []
    for rep in range(2):
        backend = get_backend(a.backend, **options)
        session = ProfileSession(backend, protocol, canary_every=a.canary_every, seed=a.seed + rep)
        t0 = time.perf_counter()
        ms = session.run(ops)
        wall = time.perf_counter() - t0
        backend.close()
        runs.append({"by_key": {m.op.key: m for m in ms}, "wall": wall, "remeasured": session.remeasured})
        print(f"pass {rep + 1}: {len(ms)} ops in {wall:.1f} s on {backend.target('bench').id}, "
              f"{session.remeasured} re-timed after canary drift")

    first, second = runs[0]["by_key"], runs[1]["by_key"]
    diffs, walls, timed, samples, forwards, converged = [], [], [], [], [], 0
    other: Dict[str, List[float]] = {"p10_ms": [], "min_ms": []}
    print(f"\n{'op':58s} {'run1 ms':>9s} {'run2 ms':>9s} {'|d|%':>6s} {'n':>5s} {'it/s':>5s} {'wall s':>7s}")
    for key in sorted(first):
        m1, m2 = first[key], second[key]
        d = abs(m1.stats.median_ms - m2.stats.median_ms) / m1.stats.median_ms
        diffs.append(d)
        for stat, acc in other.items():
            v1, v2 = getattr(m1.stats, stat), getattr(m2.stats, stat)
            acc.append(abs(v1 - v2) / v1)
        for m in (m1, m2):
            t = m.env["timing"]
            walls.append(t["wall_s"])
            timed.append(t["timed_s"])
            samples.append(m.stats.n)
            forwards.append(m.stats.n * m.stats.iters_per_sample + t["warmup_iters"])
            converged += bool(t["converged"])
        print(f"{key[:58]:58s} {m1.stats.median_ms:9.4f} {m2.stats.median_ms:9.4f} {100 * d:6.2f} "
              f"{m1.stats.n:5d} {m1.stats.iters_per_sample:5d} {m1.env['timing']['wall_s']:7.3f}")

    n_ops = len(first)
    total_wall = sum(r["wall"] for r in runs)
    print("\nsummary")
    print(f"  repeatability: median |diff| {100 * statistics.median(diffs):.2f}%, "
          f"p90 {100 * quantile(sorted(diffs), 0.9):.2f}%, max {100 * max(diffs):.2f}% over {n_ops} ops")
    print("  repeatability of other statistics: " + ", ".join(
        f"{stat[:-3]} median |diff| {100 * statistics.median(acc):.2f}%" for stat, acc in other.items()))
    print(f"  session wall time per op (incl. canary, clocks): {total_wall / (2 * n_ops):.3f} s")
    print(f"  measure() wall time per op: median {statistics.median(walls):.3f} s")
    print(f"  wall / time inside timed samples: {sum(walls) / sum(timed):.2f}x (measure only), "
          f"{total_wall / sum(timed):.2f}x (whole session)")
    print(f"  samples per op: median {statistics.median(samples):.0f}; forward passes per op incl. warm-up: "
          f"median {statistics.median(forwards):.0f} vs TF-NAS's fixed {TFNAS_FORWARDS}")
    print(f"  converged to ci {100 * a.ci:g}%: {converged}/{2 * n_ops}")
    if a.fixed:
        fixed_protocol(a, options, [s for s in ops if s.key in first], first)
    return 0


def fixed_protocol(a: argparse.Namespace, options: Dict[str, object], ops: list, adaptive: Dict) -> None:
    """TF-NAS's recipe (100 warm-up + 1,000 individually timed runs, median) on the same ops."""
    from profiler_agent.timing import IntervalTimer, summarize

    backend = get_backend(a.backend, **options)
    if a.backend not in ("pytorch-cpu", "pytorch-cuda"):
        print("  (--fixed is implemented for the torch backends only)")
        return
    from profiler_agent.backends.torch_common import TorchBackend

    assert isinstance(backend, TorchBackend)
    import torch

    sync = torch.cuda.synchronize if a.backend == "pytorch-cuda" else None
    diffs, walls = [], []
    for spec in ops:
        module, inputs = backend.build_op(spec)
        timer = IntervalTimer(sync=sync)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(100):
                module(*inputs)
            xs = []
            for _ in range(1000):
                timer.start()
                module(*inputs)
                xs.append(timer.stop() * 1e3)
        walls.append(time.perf_counter() - t0)
        med = summarize(xs).median_ms
        ours = adaptive[spec.key].stats.median_ms
        diffs.append(abs(med - ours) / med)
        print(f"  fixed {spec.key[:52]:52s} {med:9.4f} ms (adaptive {ours:9.4f}) {walls[-1]:6.2f} s")
    print(f"  fixed protocol: wall per op median {statistics.median(walls):.3f} s; "
          f"median |adaptive - fixed| {100 * statistics.median(diffs):.2f}%")


if __name__ == "__main__":
    raise SystemExit(main())
