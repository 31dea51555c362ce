"""Where the workflow bench's held-out errors come from: the LUT, the measured "truth", or the model.

Every workflow run (``bench_workflow.py``, protocol 2) scores the same held-out architectures
(the seeds follow ``--seed``), so runs of one file, or of several files with the same seeds, can
be set side by side per configuration. For each architecture and run, log(LUT sum / measured)
splits three ways:

- **offset**: the run's mean over its held-out architectures. A calibration fitted in another
  process absorbs its own process's offset, not this one's; ``fit`` beside it is the calibration
  process's mean (files written since ``fit_rows`` were kept), and ``held - fit`` is what no
  calibration can remove.
- **persistent**: an architecture's own error, the same in every run: what the additive model
  (the LUT's sum) gets wrong about that network, which more timing cannot fix.
- **transient**: what is left, new in each run. It is split again into the LUT sum's part and the
  measured time's part, by the same two-way split of log(LUT sum) and of log(measured) alone.

Rows that kept the speed reference's slowdowns (``env["speed"]``) add each process's mean
slowdown: a held-out process far off its calibration with an unusual slowdown points at the
reference, one with the usual slowdown at the machine.

``boot`` is the noise of one network's measured figure within its own process: the sd of the
fast-half of its rounds, resampled (rows that kept their rounds). Transient measured scatter well
above it is drift between the networks of one process, not round-to-round noise.

    python bench/workflow_scatter.py bench/results/workflow_cpu_stop19_run1.json \\
        bench/results/workflow_cpu_fixed075.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from lutcore.records import Target
from profiler_agent.rounds import combine

Key = Tuple[str, str]  # (backend@threads, space)


def config_key(result: Dict[str, Any]) -> Key:
    target = Target.parse(result["target"])
    return f"{target.backend}@{target.settings.get('threads', '-')}", result["space"]


def load(paths: Sequence[str]) -> Dict[Key, Dict[str, Dict[str, Any]]]:
    """config -> run tag -> {rows by arch, fit_rows}; a run tag is unique over files (``file#run``)."""
    out: Dict[Key, Dict[str, Dict[str, Any]]] = {}
    seen: Dict[str, str] = {}
    for path in paths:
        doc = json.loads(Path(path).read_text())
        for run in doc["runs"]:
            # --append copies earlier runs into a new file: a run started at the same moment is the same run.
            if seen.setdefault(str(run.get("started")), path) != path:
                continue
            tag = f"{path.rsplit('/', 1)[-1].removesuffix('.json')}#{run['run']}"
            for res in run["results"]:
                out.setdefault(config_key(res), {})[tag] = {
                    "rows": {r["arch"]: r for r in res["rows"]}, "fit_rows": res.get("fit_rows")}
    return out


def two_way(matrix: List[List[float]]) -> Tuple[float, float]:
    """(persistent sd, transient sd) of an archs x runs matrix of logs, each run's mean removed first."""
    n, k = len(matrix), len(matrix[0])
    runs_mean = [statistics.fmean(row[j] for row in matrix) for j in range(k)]
    centred = [[row[j] - runs_mean[j] for j in range(k)] for row in matrix]
    arch = [statistics.fmean(row) for row in centred]
    resid = sum((centred[i][j] - arch[i]) ** 2 for i in range(n) for j in range(k)) / ((n - 1) * (k - 1))
    persistent = max(statistics.variance(arch) - resid / k, 0.0)
    return math.sqrt(persistent), math.sqrt(resid)


def bootstrap_sd(rounds: Sequence[float], draws: int = 400, seed: int = 0) -> float:
    rng = random.Random(seed)
    est = [combine([rng.choice(rounds) for _ in rounds], "fast-half") for _ in range(draws)]
    return statistics.stdev(est) / statistics.fmean(est)


def mean_slowdown(rows: Iterable[Dict[str, Any]]) -> Optional[float]:
    """The speed reference's mean slowdown over these networks' rounds (rows that kept ``speed``)."""
    fs = [f for r in rows for f in ((r.get("speed") or {}).get("slowdowns") or []) if f is not None]
    return statistics.fmean(fs) if fs else None


def report(key: Key, runs: Dict[str, Dict[str, Any]]) -> Optional[str]:
    tags = sorted(runs)
    archs = sorted(set.intersection(*(set(runs[t]["rows"]) for t in tags)))
    if len(tags) < 2 or len(archs) < 4:
        return None

    def logs(field: Optional[str]) -> List[List[float]]:
        def value(r: Dict[str, Any]) -> float:
            return math.log(r["lut_ms"] / r["measured_ms"]) if field is None else math.log(r[field])
        return [[value(runs[t]["rows"][a]) for t in tags] for a in archs]

    ratio = logs(None)
    persistent, transient = two_way(ratio)
    _, lut = two_way(logs("lut_ms"))
    _, measured = two_way(logs("measured_ms"))
    offsets = []
    for j, t in enumerate(tags):
        held = statistics.fmean(row[j] for row in ratio)
        fit_rows = runs[t]["fit_rows"]
        fit = statistics.fmean(math.log(1 + f["raw_error"]) for f in fit_rows) if fit_rows else None
        slow = mean_slowdown(runs[t]["rows"].values()), mean_slowdown(fit_rows or [])
        offsets.append(f"{100 * held:+.1f}" + (f" (fit {100 * fit:+.1f}, held-fit {100 * (held - fit):+.1f})"
                                               if fit is not None else "")
                       + (f" [slowdown held {slow[0]:.2f}, fit {slow[1]:.2f}]" if None not in slow else ""))
    boots = [bootstrap_sd(r["rounds"]) for t in tags for r in runs[t]["rows"].values() if r.get("rounds")]
    boot = f"{100 * statistics.median(boots):.2f}%" if boots else "-"
    return (f"{key[0]:15s} {key[1]:17s} runs {len(tags)} archs {len(archs):2d}  persistent {100 * persistent:.2f}%  "
            f"transient {100 * transient:.2f}% (LUT {100 * lut:.2f}%, measured {100 * measured:.2f}%, "
            f"boot {boot})\n{'':34s}offset per run: {', '.join(offsets)}")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", nargs="+", help="bench_workflow.py --json files (protocol 2, same --seed)")
    args = p.parse_args(argv)
    printed = 0
    for key, runs in sorted(load(args.json).items()):
        line = report(key, runs)
        if line:
            print(line)
            printed += 1
    if not printed:
        print("no configuration has two runs over the same held-out architectures", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
