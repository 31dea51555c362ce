"""A cell space on the server: registered like a chain space, counted in /status, and refused by the
layers x candidates cost matrix with a message that names the cell-cost path."""

from __future__ import annotations

from lutcore.spaces import get_space
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
