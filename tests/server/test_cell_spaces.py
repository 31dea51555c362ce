"""A cell space on the server: registered like a chain space, counted in /status, and refused by the
layers x candidates cost matrix with a message that names the cell-cost path."""

from __future__ import annotations

from typing import Union

import pytest

from lutcore.spaces import Arch, get_arch, get_space
from lutcore.spaces.cells import CellArch
from tests.server.helpers import batch, item

TARGET = "cpu-x86/pytorch-cpu/fp32@threads=1"
TARGET_DICT = {"device": "cpu-x86", "backend": "pytorch-cpu", "precision": "fp32", "batch": 1,
               "settings": {"threads": "1"}}


def test_cell_space_registers_counts_and_points_at_cell_costs(api):
    search = api.token("search")
    sp = get_space("darts-cifar10", None)
    timed = [s for s in sp.unique_ops().values() if not s.is_identity]
    reg = api.post("/spaces", {"space": "darts-cifar10", "target": TARGET}, headers=search)
    assert reg["enqueued"] == len(timed) and reg["unique_ops"] == len(sp.unique_ops())
    api.post("/measurements", batch([item(s, 0.01 * (i + 1)) for i, s in enumerate(timed[:5])], target=TARGET_DICT))
    [cov] = api.get("/status")["spaces"]
    assert (cov["space"], cov["measured"], cov["total"]) == ("darts-cifar10", 5, len(timed))
    r = api.c.post("/api/v1/cost-matrix", json={"space": "darts-cifar10", "target": TARGET})
    assert r.status_code == 422 and "cell space" in r.text and "cell_costs" in r.text


def test_cell_costs_fill_the_layout_from_the_lut(api):
    """POST /cell-costs: the layout with C [cells][edges][ops], preprocessing, depth options and fixed
    cost filled from the LUT; unmeasured entries are null and listed; cached by ETag until the LUT moves."""

    search = api.token("search")
    arch: Union[Arch, CellArch] = get_arch("darts-v2-cifar10")
    assert isinstance(arch, CellArch)  # get_arch is typed Arch, but gives a cell space's architectures as CellArch
    sp = arch.space
    ms = {s.key: 0.01 * (i + 1) for i, (_, s) in enumerate(arch.all_ops())}
    api.post("/measurements", batch([item(s, ms[s.key]) for _, s in arch.all_ops() if s.key in ms],
                                    target=TARGET_DICT))
    body = {"space": "darts-cifar10", "target": TARGET}
    r = api.c.post("/api/v1/cell-costs", json=body, headers=search)
    assert r.status_code == 200, r.text
    cc = r.json()
    assert cc["layout"] == sp.layout().to_dict() and cc["lut_version"] > 0
    assert len(cc["C"]) == len(sp.cells) and len(cc["C"][0]) == 14 and len(cc["C"][0][0]) == 8
    none, skip = sp.ops.index("none"), sp.ops.index("skip_connect")
    want_missing = {k for k, s in sp.unique_ops().items() if k not in ms}
    assert set(cc["missing"]) == want_missing and cc["coverage"]["measured"] == len(ms)
    lut = cc["fixed_ms"]
    assert lut == pytest.approx(sum(ms[f.spec.key] for f in sp.fixed))
    for i, (cell, pre0) in enumerate(arch.kept_cells()):
        add = ms[cell.node_add.spec.key]  # glue: one add per non-zero input, less one per node, and the concat
        want_pre = ms[pre0.spec.key] + ms[cell.pre1.spec.key] + ms[cell.concat.spec.key] - cell.nodes * add
        assert cc["pre"][i] == pytest.approx(want_pre)
        lut += cc["pre"][i]
        for e, op, spec in arch.cell_edge_ops(cell):
            want = add + (0.0 if spec.is_identity else ms[spec.key])
            assert cc["C"][i][e][sp.ops.index(op)] == pytest.approx(want)
            lut += cc["C"][i][e][sp.ops.index(op)]
        assert cc["C"][i][0][none] == 0.0
    assert lut == pytest.approx(sum(ms[s.key] for _, s in arch.all_ops()))  # the deployed network's ops
    normal = next(i for i, c in enumerate(sp.cells) if not c.reduction)
    assert cc["C"][normal][0][skip] == pytest.approx(ms[sp.cells[normal].node_add.spec.key])  # identity: its add
    assert any(v is None for row in cc["C"][normal] for v in row)  # ops the arch does not use: unmeasured
    etag = r.headers["etag"]
    again = api.c.post("/api/v1/cell-costs", json=body, headers={**search, "If-None-Match": etag})
    assert again.status_code == 304
    gone = next(iter(want_missing))
    spec = sp.unique_ops()[gone]
    api.post("/measurements", batch([item(spec, 0.5)], target=TARGET_DICT))
    moved = api.c.post("/api/v1/cell-costs", json=body, headers={**search, "If-None-Match": etag})
    assert moved.status_code == 200 and gone not in moved.json()["missing"]
    bad = api.c.post("/api/v1/cell-costs", json={"space": "squeezenas-xlarge", "target": TARGET}, headers=search)
    assert bad.status_code == 422 and "/cost-matrix" in bad.text
    bad = api.c.post("/api/v1/cell-costs", json={"space": "darts-cifar10", "target": TARGET, "metric": "x"},
                     headers=search)
    assert bad.status_code == 422 and "Traceback" not in bad.text
