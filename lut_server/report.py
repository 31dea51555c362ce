"""`lut report`: one self-contained HTML page (plots as base64 PNG, no external resources) showing what
the LUT holds for a (target, space) and how well it predicts whole networks; each plot also as PNG.

matplotlib (the `report` extra) is imported lazily with the Agg backend: the server never needs it.
Missing data degrades to a note in place of the plot.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lutcore.calibration import Calibration

PLOTS = ("heatmap", "macs_latency", "predicted_measured", "coverage")


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("lut report needs matplotlib: pip install 'nas-lut[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ticker() -> Any:
    import matplotlib.ticker

    return matplotlib.ticker


def spearman(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Rank correlation (average ranks for ties); None with fewer than 3 points or no spread."""
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def _ranks(v: Sequence[float]) -> List[float]:
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


# -- plots: each returns PNG bytes, or a note saying why there is no plot ---------------------------
def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def plot_heatmap(cm: Dict[str, Any]) -> Tuple[Optional[bytes], str]:
    import numpy as np

    plt = _plt()
    mat, mask, cands = cm["matrix"], cm["mask"], cm["candidates"]
    if not mat or not cands:
        return None, "The space has no searchable layers."
    vals = np.array([[np.nan if v is None else float(v) for v in row] for row in mat])
    invalid = np.array(mask, dtype=bool)
    missing = np.isnan(vals) & ~invalid
    if np.all(np.isnan(vals)):
        return None, "No cell of the cost matrix is measured yet."
    L, K = vals.shape
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * K + 3), max(4.0, 0.32 * L + 2)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(vals), aspect="auto", cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="latency (ms)")
    for (i, j) in zip(*np.nonzero(invalid)):
        ax.text(j, i, "\u00d7", ha="center", va="center", color="#888888", fontsize=9)
    for (i, j) in zip(*np.nonzero(missing)):
        ax.text(j, i, "?", ha="center", va="center", color="#c0392b", fontsize=9, fontweight="bold")
    if L * K <= 300:
        hi = np.nanmax(vals)
        for (i, j) in zip(*np.nonzero(~np.isnan(vals) & ~invalid)):
            ax.text(j, i, f"{vals[i, j]:.2g}", ha="center", va="center", fontsize=6,
                    color="white" if vals[i, j] < 0.6 * hi else "black")
    ax.set_xticks(range(K), cands, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(L), cm.get("row_labels") or [str(i) for i in range(L)], fontsize=7)
    ax.set_xlabel("candidate" if "row_labels" not in cm else "op")
    ax.set_ylabel(cm.get("row_name", "layer"))
    what = cm.get("title", "C(i, j)")
    note = ("? = not measured yet in some cell" if "row_labels" in cm else
            "\u00d7 = candidate invalid at that layer, ? = not measured yet")
    ax.set_title(f"{what}: {cm['space']} @ {cm['resolution']} on {cm['target']}\n{note}", fontsize=10)
    return _png(fig), ""


def macs_points(cm: Dict[str, Any], macs: Optional[List[List[Optional[int]]]]) -> List[Tuple[str, float, float]]:
    """(candidate, MACs, ms) of every measured, valid, non-identity cell."""
    if macs is None:
        return []
    pts = []
    for row_v, row_m, row_mask, row_k in zip(cm["matrix"], macs, cm["mask"], cm["keys"]):
        for cand, v, m, bad, key in zip(cm["candidates"], row_v, row_m, row_mask, row_k):
            if bad or v is None or m is None or (key or "").startswith("skip:identity:") or m <= 0 or v <= 0:
                continue
            pts.append((cand, float(m), float(v)))
    return pts


def plot_macs(cm: Dict[str, Any], macs: Optional[List[List[Optional[int]]]]) -> Tuple[Optional[bytes], str]:
    if macs is None:
        return None, "MACs are unknown for this space here (a custom space: run the report with --db)."
    pts = macs_points(cm, macs)
    if len(pts) < 2:
        return None, "Fewer than two measured cells with MACs: nothing to compare yet."
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = plt.get_cmap("tab20")
    for n, cand in enumerate(dict.fromkeys(cm["candidates"])):
        mine = [(m, v) for c, m, v in pts if c == cand]
        if mine:
            ax.scatter([m / 1e6 for m, _ in mine], [v for _, v in mine], s=22, label=cand,
                       color=colours(n % 20), alpha=0.85, edgecolors="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel("measured latency (ms)")
    rho = spearman([m for _, m, _ in pts], [v for _, _, v in pts])
    ax.set_title("MACs vs latency per candidate (every layer): MACs are not latency", fontsize=10)
    ax.text(0.02, 0.97, f"Spearman rank correlation = {rho:.3f}" if rho is not None else "rank correlation: n/a",
            transform=ax.transAxes, va="top", fontsize=10, bbox={"facecolor": "white", "alpha": 0.8})
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="candidate", title_fontsize=8)
    ax.grid(True, which="both", alpha=0.25)
    return _png(fig), ""


def plot_predicted(vals: Optional[Dict[str, Any]]) -> Tuple[Optional[bytes], str]:
    results = latest(vals)
    if not results:
        return None, ("No validations yet: run `profiler-agent validate --space S --archs published,random:20` "
                      "to time whole networks against the LUT.")
    plt = _plt()
    cal = Calibration.from_dict(vals["calibration"]) if vals and vals.get("calibration") else None
    fig, ax = plt.subplots(figsize=(7, 6.5))
    meas = [r["measured_ms"] for r in results]
    pred = [r["predicted_ms"] for r in results]
    allv = meas + pred
    if cal is not None:
        calv = [cal.apply(r["predicted_ms"], r["n_ops"]) for r in results]
        allv += calv
    lo, hi = min(allv) * 0.9, max(allv) * 1.1
    xs = [lo, hi]
    ax.fill_between(xs, [x * 0.9 for x in xs], [x * 1.1 for x in xs], color="#2ecc71", alpha=0.15,
                    label="\u00b110% band")
    ax.plot(xs, xs, color="black", lw=1, label="y = x")
    for kind, marker in (("published", "s"), ("random", "o"), ("named", "D")):
        idx = [i for i, r in enumerate(results) if r["kind"] == kind]
        if not idx:
            continue
        ax.scatter([meas[i] for i in idx], [pred[i] for i in idx], marker=marker, s=36, color="#e67e22",
                   alpha=0.85, label=f"raw LUT sum ({kind})")
        if cal is not None:
            ax.scatter([meas[i] for i in idx], [calv[i] for i in idx], marker=marker, s=36, color="#2980b9",
                       alpha=0.85, label=f"calibrated ({kind})")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured end to end (ms)")
    ax.set_ylabel("predicted by the LUT (ms)")
    s = vals["summary"] if vals else {}
    title = (f"Predicted vs measured ({len(results)} architectures); "
             f"raw median |error| {_pct(s.get('median_abs_error'))}")
    if cal is not None and vals is not None and vals.get("calibrated_summary"):
        title += f"\ncalibrated (held out) {_pct(vals['calibrated_summary'].get('median_abs_error'))}"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.25)
    ax.set_aspect("equal")
    return _png(fig), ""


def plot_coverage(cm: Dict[str, Any]) -> Tuple[Optional[bytes], str]:
    mask, mat = cm["mask"], cm["matrix"]
    if not mat:
        return None, "The space has no searchable layers."
    plt = _plt()
    share = []
    for row, mrow in zip(mat, mask):
        valid = [v for v, bad in zip(row, mrow) if not bad]
        share.append(100.0 * sum(v is not None for v in valid) / len(valid) if valid else 100.0)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(range(len(share)), share, color=["#27ae60" if s >= 100 else "#e74c3c" for s in share])
    cov = cm["coverage"]
    ax.set_ylim(0, 105)
    ax.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True))
    ax.set_xlabel(cm.get("row_name", "layer"))
    ax.set_ylabel("valid candidates measured (%)")
    fixed = "known" if cm.get("fixed_ms") is not None else "missing"
    ax.set_title(f"Coverage: {cov['measured']} of {cov['total']} unique ops measured "
                 f"({100 * cov['fraction']:.1f}%); fixed cost {fixed}", fontsize=10)
    return _png(fig), ""


def latest(vals: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    by_arch: Dict[str, Dict[str, Any]] = {}
    for r in (vals or {}).get("results") or []:
        by_arch[r["arch"]] = r
    return [by_arch[a] for a in sorted(by_arch)]


# -- HTML -------------------------------------------------------------------------------------------
def _pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _summary_rows(vals: Optional[Dict[str, Any]]) -> List[List[Any]]:
    rows = []
    for label, s in (("raw LUT sum (latest per architecture)", (vals or {}).get("summary")),
                     ("calibrated (architectures not used to fit)", (vals or {}).get("calibrated_summary")),
                     ("isolated op times, networks with in-context times", (vals or {}).get(
                         "isolated_summary_same_networks")),
                     ("in-context op times (the backend's per-layer profile), same networks",
                      (vals or {}).get("in_context_summary"))):
        if s and s.get("n"):
            rows.append([label, s["n"], _pct(s["median_abs_error"]), _pct(s["max_abs_error"]),
                         _pct(s.get("mean_error")), _pct(s["within_5pct"]), _pct(s["within_10pct"])])
    return rows


def _devices_html(devs: List[Dict[str, Any]]) -> str:
    if not devs:
        return '<p class="note">No registered device has measured this target.</p>'
    parts = []
    for d in devs:
        fp = d.get("fingerprint") or {}
        rows = [[k, v] for k, v in sorted(fp.items())] or [["(empty fingerprint)", ""]]
        hist = d.get("history") or []
        earlier = [h for h in hist if h.get("digest") != d.get("fingerprint_digest")]
        old = "".join(f"<li>{_esc(h.get('digest'))}: "
                      f"{_esc(', '.join(f'{k}={v}' for k, v in sorted((h.get('fingerprint') or {}).items())))}</li>"
                      for h in earlier)
        parts.append(f"<h3>{_esc(d['name'])} <small>({_esc(d.get('device_class', '?'))}, fingerprint "
                     f"{_esc(d.get('fingerprint_digest', '?'))}, {len(hist)} version(s) seen)</small></h3>"
                     + _table(["field", "value"], rows)
                     + (f"<p>Earlier fingerprints (measurements may mix software versions):</p><ul>{old}</ul>"
                        if old else ""))
    return "".join(parts)


def _comparison_html(c: Optional[Dict[str, Any]]) -> str:
    """The GET /compare answer (``lut_server.compare``) as the report's comparison section; "" unless asked."""
    if not c:
        return ""
    ratio = "n/a" if c["median_ratio"] is None else f"{c['median_ratio']:.3f}"
    summary = _table(["old target", "new target", "ops in both", "median new/old", "median |difference|",
                      "within \u00b110%", "only in old", "only in new"],
                     [[c["old"], c["new"], c["common"], ratio, _pct(c["median_abs_diff"]), _pct(c["within_10pct"]),
                       c["only_old"], c["only_new"]]])
    worst = _table(["op", "old ms", "new ms", "new/old"],
                   [[w["key"], f"{w['old_ms']:.4g}", f"{w['new_ms']:.4g}", f"{w['ratio']:.3f}"] for w in c["worst"]])
    only = "".join(f"<p>Only in {side} ({_esc(c[side])}): {c[f'only_{side}']} op(s), e.g. "
                   f"{_esc(', '.join(c[f'only_{side}_examples']))}</p>" for side in ("old", "new") if c[f"only_{side}"])
    return (f'<section id="comparison"><h2>Old LUT vs fresh measurements</h2>'
            f"<p>Op by op over the space's {c.get('space_ops', '?')} ops: the LUT values (median of run medians) "
            f"of {_esc(c['old'])} against {_esc(c['new'])}; |difference| is |new/old - 1|.</p>{summary}"
            + (f"<p>The ops furthest apart (by factor):</p>{worst}" if c["worst"] else
               '<p class="note">No op of the space is in both LUTs.</p>') + f"{only}</section>")


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #2980b9;padding-bottom:.2em;
margin-top:1.8em}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:left}th{background:#eef3f8}img{max-width:100%;border:1px solid #eee}
.note{background:#fff7e0;border-left:4px solid #f1c40f;padding:.6em 1em}.meta{color:#555}small{color:#666;
font-weight:normal}.err-bad{color:#c0392b}"""


def render_html(data: Dict[str, Any], images: Dict[str, Tuple[Optional[bytes], str]]) -> str:
    cm, vals = data["cost_matrix"], data.get("validations")
    cal = (vals or {}).get("calibration")

    def figure(name: str, alt: str) -> str:
        png, note = images[name]
        if png is None:
            return f'<p class="note">{_esc(note)}</p>'
        return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'

    results = latest(vals)
    calobj = Calibration.from_dict(cal) if cal else None
    per_arch = [[r["arch"], r["kind"], f"{r['predicted_ms']:.3f}", f"{r['measured_ms']:.3f}", _pct(r["error"]),
                 _pct(calobj.error(_val(r))) if calobj else "",
                 r.get("lut_version"), r.get("device_name")] for r in results]
    cov = cm["coverage"]
    summary = _summary_rows(vals)
    cal_text = ("No calibration fitted yet (POST /calibrations/fit)." if not cal else
                f"measured \u2248 {cal['a']:.4f} \u00d7 LUT sum + {cal['b']:.4f} ms + {cal.get('c', 0.0):.4f} ms "
                f"\u00d7 n_ops, fitted on {cal.get('n_fit', '?')} random architectures.")
    summary_html = (_table(["predictions", "n", "median |error|", "max |error|", "mean error", "within \u00b15%",
                            "within \u00b110%"], summary) if summary else
                    '<p class="note">No validations yet: nothing says how well the LUT predicts whole networks. '
                    "Run <code>profiler-agent validate</code>.</p>")
    arch_html = _table(["architecture", "kind", "predicted ms", "measured ms", "error", "calibrated error",
                        "LUT version", "device"], per_arch) if per_arch else ""
    missing_html = ("<p>Missing: " + _esc(", ".join(cm["missing"][:20])) + (" ..." if len(cm["missing"]) > 20 else "")
                    + "</p>") if cm.get("missing") else "<p>Every op of the space is measured.</p>"
    n_invalid = sum(bool(b) for row in cm["mask"] for b in row)
    n_missing = sum(v is None and not b for row, mrow in zip(cm["matrix"], cm["mask"]) for v, b in zip(row, mrow))
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    types = data.get("cell_types")
    shape = (f"{len(types)} cell types, {cm['layers']} cells" if types else
             f"{len(cm['candidates'])} candidates &times; {cm['layers']} layers")
    heat = _cell_heatmaps(types, figure) if types else f"""<h2>Cost matrix C(i, j)</h2>
{figure("heatmap", "cost matrix heatmap")}
<p>Rows are layers, columns candidates; &times; marks a candidate invalid at that layer ({n_invalid} cells),
? a valid cell not measured yet ({n_missing} cells).</p>"""
    pair = "(cell, edge, op) entry" if types else "(layer, candidate) cell"
    title = f"LUT report: {cm['space']} @ {cm['resolution']} on {cm['target']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p class="meta">LUT version {_esc(cm.get('lut_version'))} &middot; {shape} &middot;
coverage {cov['measured']}/{cov['total']} ({100 * cov['fraction']:.1f}%) &middot;
generated {generated}</p>
<section id="validation-summary"><h2>Validation summary</h2>
{summary_html}
<p>{_esc(cal_text)}</p></section>
<section id="predicted-vs-measured"><h2>Predicted vs measured</h2>
{figure("predicted_measured", "predicted vs measured")}
{arch_html}</section>
<section id="heatmap">{heat}</section>
<section id="macs-vs-latency"><h2>MACs vs latency</h2>
<p>Each point is one {pair}. If MACs predicted latency the points would line up; the rank
correlation says how far they do.</p>{figure("macs_latency", "MACs vs latency")}</section>
<section id="coverage"><h2>Coverage</h2>{figure("coverage", "coverage per layer")}
{missing_html}</section>
{_comparison_html(data.get("comparison"))}
<section id="devices"><h2>Devices and fingerprints</h2>{_devices_html(data.get("devices") or [])}</section>
</body></html>
"""


def _cell_heatmaps(types: List[Dict[str, Any]], figure: Any) -> str:
    figs = "".join(f"<h3>{_esc(t['cell_type'])} <small>({t['cells']} cells)</small></h3>"
                   f"{figure(_heatmap_name(t), 'heatmap of ' + t['cell_type'])}" for t in types)
    return f"""<h2>Cell costs C(edge, op), one heatmap per cell type</h2>
<p>Rows are a cell's edges (node &rarr; node; 0 and 1 are the cell's inputs), columns the ops; each entry
sums the op's cost on that edge over every cell of the type (all cells kept). The zero op costs 0;
? marks an entry not measured yet in some cell.</p>{figs}"""


def _heatmap_name(t: Dict[str, Any]) -> str:
    return "heatmap_" + "".join(ch if ch.isalnum() else "_" for ch in t["cell_type"])


def _val(r: Dict[str, Any]) -> Any:
    from lutcore.calibration import Validation

    return Validation(r["arch"], r["predicted_ms"], r["measured_ms"], r["n_ops"])


def write_report(data: Dict[str, Any], out: Path) -> List[Path]:
    """Write the HTML page and its plots (``<stem>_<plot>.png`` beside it); returns every path written."""
    cm = data["cost_matrix"]
    types = data.get("cell_types") or []
    images = {
        **({_heatmap_name(t): plot_heatmap(t) for t in types} if types else {"heatmap": plot_heatmap(cm)}),
        "macs_latency": plot_macs(cm, data.get("macs")),
        "predicted_measured": plot_predicted(data.get("validations")),
        "coverage": plot_coverage(cm),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for name in [_heatmap_name(t) for t in types] + [p for p in PLOTS if p in images]:
        png = images[name][0]
        if png is not None:
            p = out.with_name(f"{out.stem}_{name}.png")
            p.write_bytes(png)
            written.append(p)
    out.write_text(render_html(data, images), encoding="utf-8")
    return [out] + written
