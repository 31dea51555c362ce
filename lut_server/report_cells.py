"""A cell space's /cell-costs answer as the report draws it: one [edges x ops] heatmap per cell type,
and a flat view (one row per cell, its edges' ops side by side) for coverage and MACs vs latency.
The live dashboard's cell heatmaps (dashboard_data.cell_heatmaps) read the same ``type_matrices``.

A cell type's heatmap holds C(edge, op) summed over the type's cells (every cell kept): what choosing
that op on that edge costs the whole network, the quantity DARTS-style searches trade off.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from lutcore.netsum import sum_or_none

Matrix = List[List[Optional[float]]]


def type_matrices(cc: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Per cell type, a cost-matrix-like mapping (rows: edges ``src->dst``, columns: ops) for plot_heatmap."""
    lay = cc["layout"]
    out = []
    for t in lay["cell_types"]:
        rows = [i for i, c in enumerate(lay["cells"]) if c["type"] == t]
        n_ops = len(lay["ops"])
        matrix: Matrix = [[sum_or_none(cc["C"][i][e][o] for i in rows) for o in range(n_ops)]
                          for e in range(len(lay["edges"]))]
        out.append({
            "space": cc["space"], "resolution": cc["resolution"], "target": cc["target"], "cell_type": t,
            "cells": len(rows), "candidates": list(lay["ops"]), "matrix": matrix,
            "mask": [[False] * len(lay["ops"]) for _ in lay["edges"]],
            "row_labels": [f"{s}\u2192{d}" for s, d in lay["edges"]], "row_name": "edge (node \u2192 node)",
            "title": f"{t}: C(edge, op) summed over its {len(rows)} cell(s)",
        })
    return out


def flat_view(cc: Mapping[str, Any]) -> Dict[str, Any]:
    """One row per cell, columns (edge, op); zero ops masked. Keeps /cell-costs' coverage and missing."""
    lay = cc["layout"]
    keys = [[k for row in c["keys"] for k in row] for c in lay["cells"]]
    return {
        **{k: cc[k] for k in ("space", "resolution", "target", "lut_version", "coverage", "missing", "fixed",
                              "fixed_ms", "calibration") if k in cc},
        "candidates": [op for _ in lay["edges"] for op in lay["ops"]],
        "layers": len(lay["cells"]),
        "matrix": [[v for row in cell for v in row] for cell in cc["C"]],
        "keys": keys,
        "mask": [[k is None for k in row] for row in keys],
        "row_name": "cell",
    }


def flat_macs(cc: Mapping[str, Any], macs_by_key: Mapping[str, int]) -> List[List[Optional[int]]]:
    """MACs aligned with ``flat_view``'s matrix (None for the zero op and for keys lutcore does not know)."""
    return [[None if k is None else macs_by_key.get(k) for row in c["keys"] for k in row]
            for c in cc["layout"]["cells"]]
