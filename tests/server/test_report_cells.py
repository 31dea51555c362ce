"""`lut report` for cell spaces: one heatmap per cell type, from a live server and from its database."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from lut_server import report_data
from lut_server.report import write_report
from lut_server.report_cells import type_matrices
from lutcore.records import Target
from lutcore.spaces import get_arch, get_cell_space
from search_client import LUTClient
from tests.client.lutdata import fake_ms, measurement_batch
from tests.server.test_report import distinct_colours

TARGET = Target(device="cpu-cellrep", backend="pytorch-cpu", precision="fp32", settings={"threads": "1"})


def test_cell_space_report_draws_one_heatmap_per_cell_type(live_server, tmp_path):
    """Measure darts-cifar10, validate 9 architectures, fit a calibration:
    the report draws a heatmap per cell type, the client's prediction over /cell-costs is calibrated,
    and the dashboard's truth view shows the calibration."""
    sp = get_cell_space("darts-cifar10")
    archs = [get_arch(n) for n in ["darts-v2-cifar10"] + [f"darts-cifar10:random:{i}" for i in range(8)]]
    name = "cpu-cellrep-01"
    auth = {"Authorization": f"Bearer {live_server.agent_token(name)}"}
    r = httpx.post(live_server.api + "/devices", json={"name": name, "device_class": TARGET.device}, headers=auth)
    assert r.status_code == 200, r.text
    body = measurement_batch(sp, TARGET, name, uuid.uuid4().hex, )
    r = httpx.post(live_server.api + "/measurements", json=body, headers=auth, timeout=60)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    results = []
    for i, a in enumerate(archs):
        pred = sum(fake_ms(s.key) for _, s in a.all_ops())
        measured = (0.9 * pred + 0.2) * (1.01 if i % 2 else 0.99)
        results.append({"arch": a.name, "kind": "published" if ":random:" not in a.name else "random",
                        "predicted_ms": pred, "measured_ms": measured, "n_ops": len(a.all_ops()),
                        "rounds": [measured]})
    body = {"run_id": "val-" + uuid.uuid4().hex[:12], "target": TARGET.id, "device_name": name,
            "space": sp.name, "resolution": sp.resolution_str, "lut_version": 1, "results": results}
    r = httpx.post(live_server.api + "/validations", json=body, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    r = httpx.post(live_server.api + "/calibrations/fit", headers=auth, timeout=60,
                   json={"target": TARGET.id, "space": sp.name, "resolution": sp.resolution_str})
    assert r.status_code == 200, r.text
    with LUTClient(live_server.url) as client:
        p = client.predict_latency(sp.name, "darts-v2-cifar10", TARGET)
    assert p.lut_ms == pytest.approx(results[0]["predicted_ms"], rel=1e-9)
    assert p.calibration is not None and p.calibration.a == pytest.approx(0.9, abs=0.05)
    assert p.ms == pytest.approx(p.calibration.apply(p.lut_ms, p.n_ops)) and p.ms != pytest.approx(p.lut_ms)
    truth = httpx.get(live_server.api + "/dashboard/truth", timeout=60).json()
    [mine] = [t for t in truth if t["space"] == sp.name]
    assert mine["error"] is None and mine["calibration"]["a"] == pytest.approx(p.calibration.a)

    out = tmp_path / "cells.html"
    over_http = report_data.from_server(live_server.url, None, TARGET.id, "darts-cifar10", None)
    write_report(over_http, out)  # what `lut report --server` does (the CLI path: tests/server/test_report.py)
    for cell_type in ("normal", "reduce"):
        png = tmp_path / f"cells_heatmap_{cell_type}.png"
        assert png.stat().st_size > 5000 and distinct_colours(png) > 50, cell_type
    assert not (tmp_path / "cells_heatmap.png").exists()
    page = out.read_text()
    assert "one heatmap per cell type" in page and "normal <small>(18 cells)" in page
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 5  # 2 heatmaps, predicted, MACs, coverage
    assert "Every op of the space is measured" in page and "calibrated (architectures not used to fit)" in page

    # the database path gives the same matrices, and each entry sums the type's cells from lutcore's layout
    data = report_data.from_db(live_server.db_url, TARGET.id, "darts-cifar10", None)
    assert data["cell_types"] == over_http["cell_types"] and data["macs"] == over_http["macs"]
    normal, reduce = data["cell_types"]
    assert (normal["cell_type"], normal["cells"], reduce["cells"]) == ("normal", 18, 2)
    cells = sp.cells_of_type("normal")
    for e in range(sp.num_edges):
        for o, op in enumerate(sp.ops):
            specs = [(c.edges[e].row[o], fake_ms(c.node_add.spec.key)) for c in cells]  # a non-zero op carries an add
            want = sum(0.0 if s is None else add + (0.0 if s.is_identity else fake_ms(s.key)) for s, add in specs)
            assert normal["matrix"][e][o] == pytest.approx(want, rel=1e-9), (e, op)
    assert data["cost_matrix"]["layers"] == len(sp.cells) and not data["cost_matrix"]["missing"]
    assert sum(m is not None and m > 0 for row in data["macs"] for m in row) > 100


def test_autortnet_has_a_heatmap_per_hyper_cell_type():
    """Six types (a reduction and a normal type per hyper-cell); an unmeasured op shows as None ('?')
    exactly where it sits."""
    sp = get_cell_space("autortnet", "64x128")
    layout = sp.layout()
    gone_spec = sp.cells_of_type("h1.normal")[0].edges[0].row[sp.ops.index("conv_3x3")]
    assert gone_spec is not None  # a conv, not a zero op
    gone = gone_spec.key
    filled = layout.fill({k: fake_ms(k) for k in layout.all_keys() if k != gone})
    cc = {"space": sp.name, "resolution": sp.resolution_str, "target": TARGET.id, "layout": layout.to_dict(),
          "C": filled.C}
    types = type_matrices(cc)
    assert [t["cell_type"] for t in types] == list(sp.cell_types) and len(types) == 6
    assert [t["cells"] for t in types] == [len(sp.cells_of_type(t)) for t in sp.cell_types]
    assert all(len(t["matrix"]) == sp.num_edges == len(t["row_labels"]) for t in types)
    assert types[0]["row_labels"][0] == "0\u21922"
    holes = {(t["cell_type"], e, o) for t in types for e, row in enumerate(t["matrix"]) for o, v in enumerate(row)
             if v is None}
    where = {(c.type, e.index, o) for c in sp.cells for e in c.edges for o, s in enumerate(e.row)
             if s is not None and s.key == gone}
    assert holes == {w for w in where} and ("h1.normal", 0, sp.ops.index("conv_3x3")) in holes
