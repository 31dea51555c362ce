"""Plain-text tables for the terminal (no dependency, so the core stays light)."""

from __future__ import annotations

from typing import Any, List, Sequence


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """Columns padded to their widest cell; ``align`` gives 'l' or 'r' per column (default: numbers right)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(row: List[str], raw: Sequence[Any]) -> str:
        out = []
        for i, c in enumerate(row):
            a = align[i] if i < len(align) else ("r" if isinstance(raw[i], (int, float)) else "l")
            out.append(c.rjust(widths[i]) if a == "r" else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    head = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([head, sep] + [line(r, raw) for r, raw in zip(cells, rows)])


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)
