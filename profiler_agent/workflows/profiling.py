"""Profiling a space offline into a run file: which ops, skipping what a server has, and the run's figures."""

from __future__ import annotations

import statistics
from typing import Any, Callable, Dict, Optional, Sequence, Set, Tuple

from lutcore.ops import OpSpec
from lutcore.records import Measurement, Target
from profiler_agent.offline import make_header, profile_ops


def select_ops(space: Any, batch_size: int = 1, limit: Optional[int] = None) -> Dict[str, OpSpec]:
    """The space's unique ops at ``batch_size``; ``limit`` keeps the first N by key (smoke tests)."""
    ops: Dict[str, OpSpec] = space.unique_ops()
    if batch_size != 1:
        ops = {s.key: s for s in (spec.replace(batch=batch_size) for spec in ops.values())}
    if limit is not None:
        ops = dict(sorted(ops.items())[: max(0, limit)])
    return ops


def known_keys(api: Any, target_id: str, keys: Sequence[str]) -> Set[str]:
    """The keys a LUT server already has an entry for, for this target."""
    return set(api.lookup(target_id, sorted(keys)).get("values", {}))


def profile_space(
    make_session: Callable[[Callable[[int, int, str], None]], Any],
    space: Any,
    ops: Dict[str, OpSpec],
    target: Target,
    device_name: str,
    run_id: str,
    fingerprint: Dict[str, Any],
    probe: Dict[str, Any],
    versions: Dict[str, str],
    output: str,
    resume: bool = False,
    seed: int = 0,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> Tuple[Dict[str, Any], Sequence[Measurement]]:
    """Time ``ops`` into the run file ``output`` (a resumed file must be of the same target and space)."""
    header = make_header(run_id, target, device_name, fingerprint, space.name, space.resolution_str, len(ops),
                         versions)
    header["probe"] = {k: probe.get(k) for k in ("probed_at", "clocks", "warnings")}
    return profile_ops(make_session, ops, output, header, resume=resume, seed=seed, progress=progress)


def profile_summary(header: Dict[str, Any], measured: Sequence[Measurement], wall_s: float) -> Dict[str, Any]:
    """Figures of a finished offline run (also what ``--json`` prints)."""
    n_samples = [m.stats.n for m in measured]
    ci = [
        max(m.stats.median_ms - m.stats.ci_low_ms, m.stats.ci_high_ms - m.stats.median_ms) / m.stats.median_ms
        for m in measured
        if m.stats.ci_low_ms is not None and m.stats.ci_high_ms is not None
    ]
    return {
        "run_id": header["run_id"],
        "target": header.get("target_id"),
        "space": header.get("space"),
        "resolution": header.get("resolution"),
        "ops": len(measured),
        "wall_s": round(wall_s, 2),
        "sum_median_ms": round(sum(m.stats.median_ms for m in measured), 4),
        "median_samples": statistics.median(n_samples) if n_samples else 0,
        "median_ci_pct": round(100 * statistics.median(ci), 3) if ci else None,
        "outliers": sum(m.stats.outliers for m in measured),
    }
