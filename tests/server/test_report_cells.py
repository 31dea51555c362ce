"""`lut report` for cell spaces: one heatmap per cell type, from a live server and from its database."""

from __future__ import annotations

import html
import re
import uuid

import httpx
import pytest

from lut_server import report_data
from lut_server.report_cells import type_matrices
from lutcore.records import Target
from lutcore.spaces import get_space
from tests.client.lutdata import fake_ms, measurement_batch
from tests.server.test_report import distinct_colours, lut

TARGET = Target(device="cpu-cellrep", backend="pytorch-cpu", precision="fp32", settings={"threads": "1"})


def test_cell_space_report_draws_one_heatmap_per_cell_type(live_server, tmp_path):
    sp = get_space("darts-cifar10")
    keys = [k for k, s in sp.unique_ops().items() if not s.is_identity]
    gone = next(k for k in keys if k.startswith("sep_conv:k5"))  # one op unmeasured: '?' where it sits
    name = "cpu-cellrep-01"
    auth = {"Authorization": f"Bearer {live_server.agent_token(name)}"}
    r = httpx.post(live_server.api + "/devices", json={"name": name, "device_class": TARGET.device}, headers=auth)
    assert r.status_code == 200, r.text
    body = measurement_batch(sp, TARGET, name, uuid.uuid4().hex, drop=[gone])
    r = httpx.post(live_server.api + "/measurements", json=body, headers=auth, timeout=60)
    assert r.status_code == 200 and not r.json()["rejected"], r.text

    out = tmp_path / "cells.html"
    r = lut("report", "--server", live_server.url, "--target", TARGET.id, "--space", "darts-cifar10", "-o", str(out))
    assert r.returncode == 0, r.stderr
    for cell_type in ("normal", "reduce"):
        png = tmp_path / f"cells_heatmap_{cell_type}.png"
        assert png.stat().st_size > 5000 and distinct_colours(png) > 50, cell_type
    assert not (tmp_path / "cells_heatmap.png").exists()
    page = out.read_text()
    assert "one heatmap per cell type" in page and "normal <small>(18 cells)" in page
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 4  # 2 heatmaps, MACs, coverage
    assert html.escape(gone) in page  # listed as missing

    # the database path gives the same matrices, and each entry sums the type's cells from lutcore's layout
    data = report_data.from_db(live_server.db_url, TARGET.id, "darts-cifar10", None)
    normal, reduce = data["cell_types"]
    assert (normal["cell_type"], normal["cells"], reduce["cells"]) == ("normal", 18, 2)
    cells = sp.cells_of_type("normal")
    for e in range(sp.num_edges):
        for o, op in enumerate(sp.ops):
            specs = [c.edges[e].row[o] for c in cells]
            if any(s is not None and s.key == gone for s in specs):
                assert normal["matrix"][e][o] is None
                continue
            want = sum(0.0 if s is None or s.is_identity else fake_ms(s.key) for s in specs)
            assert normal["matrix"][e][o] == pytest.approx(want, rel=1e-9), (e, op)
    assert any(v is None for row in normal["matrix"] for v in row)
    assert data["cost_matrix"]["layers"] == len(sp.cells) and gone in data["cost_matrix"]["missing"]
    assert sum(m is not None and m > 0 for row in data["macs"] for m in row) > 100


def test_autortnet_has_a_heatmap_per_hyper_cell_type():
    sp = get_space("autortnet", "64x128")
    layout = sp.layout()
    filled = layout.fill({k: fake_ms(k) for k in layout.all_keys()})
    cc = {"space": sp.name, "resolution": sp.resolution_str, "target": TARGET.id, "layout": layout.to_dict(),
          "C": filled.C}
    types = type_matrices(cc)
    assert [t["cell_type"] for t in types] == list(sp.cell_types) and len(types) == 6
    assert [t["cells"] for t in types] == [len(sp.cells_of_type(t)) for t in sp.cell_types]
    assert all(len(t["matrix"]) == sp.num_edges == len(t["row_labels"]) for t in types)
    assert types[0]["row_labels"][0] == "0\u21922"
