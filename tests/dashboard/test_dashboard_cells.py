"""The dashboard's cell-space heatmaps (one per cell type, edge x op) over a real server, and in the page.

autortnet at 64x128 (six cell types, 5 edges x 5 ops: cheap) is registered for a target and measured
but for two keys: every type's matrix must hold the sum over its cells that lutcore's layout gives,
and be null exactly where one of its cells uses an unmeasured key."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Optional, Set

import httpx
import pytest

from lutcore.records import Target
from lutcore.spaces import get_cell_space
from tests.client.lutdata import fake_ms, measurement_batch
from tests.dashboard.cdp import CHROMIUM, Browser
from tests.dashboard.lab import auth

SPACE, RES = "autortnet", "64x128"
TARGET = Target(device="cpu-celldash", backend="pytorch-cpu", precision="fp32", batch=1, settings={"threads": "1"})


def build(server: Any) -> Set[str]:
    """Register the space, measure all but two keys (one edge op of h0's cells, one of h1's); the dropped keys."""
    sp = get_cell_space(SPACE, RES)
    r = httpx.post(server.api + "/spaces", json={"space": SPACE, "resolution": RES, "target": TARGET.id},
                   headers=auth(server.search_token()), timeout=60)
    assert r.status_code == 200, r.text
    cells = {c.type: c for c in sp.cells}
    h0_op, h1_op = cells["h0.normal"].edges[1].row[3], cells["h1.reduce"].edges[0].row[4]
    assert h0_op is not None and h1_op is not None  # neither is the zero op
    drop = {h0_op.key, h1_op.key}
    name = "cpu-celldash-01"
    body = measurement_batch(sp, TARGET, name, uuid.uuid4().hex, drop=drop)
    r = httpx.post(server.api + "/measurements", json=body, headers=auth(server.agent_token(name, TARGET.device)),
                   timeout=60)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    return drop


def expected(drop: Set[str]) -> Dict[str, List[List[Optional[float]]]]:
    """Per cell type, C(edge, op) summed over its cells, straight from lutcore's space (None: a cell lacks it):
    the op's entry plus its node's add (the layout's glue), 0 for a zero edge."""
    sp = get_cell_space(SPACE, RES)
    out = {}
    for t in sp.cell_types:
        rows = []
        for e in range(sp.num_edges):
            row: List[Optional[float]] = []
            for o in range(len(sp.ops)):
                pairs = [(c.edges[e].row[o], c.node_add.spec.key) for c in sp.cells_of_type(t)]
                if any(s is not None and s.key in drop for s, _ in pairs):
                    row.append(None)
                else:  # a non-zero op carries its node's add (an identity too: its input is still added)
                    row.append(sum(0.0 if s is None else (0.0 if s.is_identity else fake_ms(s.key)) + fake_ms(add)
                                   for s, add in pairs))
            rows.append(row)
        out[t] = rows
    return out


def cell_maps(server: Any, **params: str) -> httpx.Response:
    return httpx.get(server.api + "/dashboard/cell-heatmaps", params=params, timeout=60)


def test_cell_heatmaps_one_per_cell_type_with_missing_marked(start_server, db_url):
    srv = start_server(db_url)
    assert cell_maps(srv).json() == []
    drop = build(srv)
    r = cell_maps(srv)
    assert r.status_code == 200, r.text
    (h,) = r.json()
    sp = get_cell_space(SPACE, RES)
    assert (h["space"], h["resolution"], h["target"], h["error"]) == (SPACE, RES, TARGET.id, None)
    assert h["ops"] == list(sp.ops) and h["edges"] == [f"{s}\u2192{d}" for s, d in sp.edges]
    assert h["coverage"]["total"] - h["coverage"]["measured"] == len(drop) and h["lut_version"] > 0
    want = expected(drop)
    assert [t["cell_type"] for t in h["types"]] == list(sp.cell_types) == list(want)
    for t in h["types"]:
        assert t["cells"] == len(sp.cells_of_type(t["cell_type"]))
        for got_row, want_row in zip(t["matrix"], want[t["cell_type"]], strict=True):
            assert got_row == pytest.approx(want_row, rel=1e-9)
        assert t["missing"] == sum(v is None for row in want[t["cell_type"]] for v in row)
    missing = {t["cell_type"]: t["missing"] for t in h["types"]}
    assert missing["h0.normal"] > 0 and missing["h1.reduce"] > 0 and missing["h2.normal"] == 0
    # the chain heatmaps leave cell spaces out; the filters narrow, and bad ones are clear 422s
    assert all(m["space"] != SPACE for m in httpx.get(srv.api + "/dashboard/heatmaps").json())
    assert cell_maps(srv, space=SPACE, target=TARGET.id).json() == [h]
    for params in ({"space": "no-such-space"}, {"target": "nobody/x/fp32"}):
        bad = cell_maps(srv, **params)
        assert bad.status_code == 422 and "no registered cell space matches" in bad.json()["detail"], bad.text
    long = cell_maps(srv, space="x" * 300)
    assert long.status_code == 422 and "Traceback" not in long.text


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_cell_heatmaps_draw_in_the_page(live_server, tmp_path):
    drop = build(live_server)
    (h,) = cell_maps(live_server).json()
    b = Browser(tmp_path)
    try:
        b.goto(live_server.url + "/")
        figs = "document.querySelectorAll('#cell-heatmap-panels figure.cell-type')"
        b.wait_for(figs + ".length", lambda v: v == len(h["types"]))
        sp = get_cell_space(SPACE, RES)
        rects = b.js("document.querySelectorAll('#cell-heatmap-panels svg rect.cell').length")
        assert rects == len(sp.cell_types) * sp.num_edges * len(sp.ops)  # no mask: every (edge, op) drawn
        grey = b.js("[...document.querySelectorAll('#cell-heatmap-panels figure.cell-type')]"
                    ".map(f => [f.dataset.type, f.querySelectorAll('rect.missing').length])")
        assert dict(grey) == {t["cell_type"]: t["missing"] for t in h["types"]} and sum(dict(grey).values()) > 0
        title = b.js("document.querySelector('#cell-heatmap-panels rect.missing title').textContent")
        assert "not measured yet" in title
        assert b.js("document.querySelector('#cell-heatmap-panels p.ops').textContent") == "ops: " + ", ".join(
            f"{j} {o}" for j, o in enumerate(sp.ops))
        assert b.js("document.querySelectorAll('#heatmap-panels svg').length") == 0  # not drawn as a chain
        b.screenshot(tmp_path / "cells.png")
    finally:
        b.close()
    assert drop
