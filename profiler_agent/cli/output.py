"""How commands print: JSON, tables, flattened fingerprints, error summaries."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence

from lutcore.cli.table import render


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def flatten(obj: Any, prefix: str = "") -> List[str]:
    """``  a.b[0].c: value`` lines of a nested dict (the probe's text form)."""
    if isinstance(obj, dict):
        out: List[str] = []
        for k in sorted(obj):
            out.extend(flatten(obj[k], f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        out = []
        for i, x in enumerate(obj):
            out.extend(flatten(x, f"{prefix}[{i}]"))
        return out
    return [f"  {prefix}: {obj if not isinstance(obj, list) else ', '.join(map(str, obj))}"]


def render_profile(summary: Dict[str, Any], measured: Sequence[Any]) -> str:
    rows = [(k.replace("_", " "), v) for k, v in summary.items()]
    text = render(["profile run", ""], rows, align="ll")
    slow = sorted(measured, key=lambda m: -m.stats.median_ms)[:8]
    if slow:
        table = [
            (m.op.key, m.stats.median_ms, m.stats.p10_ms, m.stats.p90_ms, m.stats.n, m.stats.outliers) for m in slow
        ]
        text += "\n\nslowest ops\n" + render(["op", "median ms", "p10", "p90", "n", "outliers"], table)
    return text


def error_summary_line(label: str, s: Dict[str, Any]) -> str:
    return (f"{label}: median |error| {100 * s['median_abs_error']:.2f}%, max {100 * s['max_abs_error']:.2f}%, "
            f"within 5% {100 * s['within_5pct']:.0f}%, within 10% {100 * s['within_10pct']:.0f}% (n={s['n']})")
