"""A width-elastic cost matrix served from measured and predicted cells (issue 20): the ``tfnas`` space's
own widths and a fifth of the others measured, every other width predicted by the server, flagged,
bounded, and close to the synthetic target's known latency."""

from __future__ import annotations

import random
import statistics

import httpx
import torch

from lutcore.spaces import get_space
from search_client import LUTClient
from tests.server.helpers import TARGET, TARGET_DICT, batch, item, law_ms

SPACE = "tfnas-elastic"


def test_an_elastic_cost_matrix_fills_its_unmeasured_widths_with_predictions(live_server):
    srv = live_server
    ops = get_space(SPACE).unique_ops()
    starting = set(get_space("tfnas").unique_ops())  # the x3 / x6 columns and the fixed ops
    others = sorted(k for k in ops if k not in starting)
    measured = starting | set(random.Random(5).sample(others, len(others) // 5))
    auth = {"Authorization": f"Bearer {srv.agent_token('xavier-01')}"}
    body = batch([item(ops[k], law_ms(ops[k])) for k in sorted(measured)], device="xavier-01", target=TARGET_DICT)
    r = httpx.post(srv.api + "/measurements", json=body, headers=auth, timeout=120)
    assert r.status_code == 200 and not r.json()["rejected"], r.text

    with LUTClient(srv.url, srv.admin_token) as c:
        cm = c.cost_matrix(SPACE, TARGET, missing="predict", dtype=torch.float64)
    assert cm.C.shape == (21, 40) and not cm.mask.any() and not torch.isnan(cm.C).any()
    assert cm.predicted is not None and cm.lo is not None and cm.hi is not None
    held = set(ops) - measured
    assert set(cm.missing) == held and cm.prediction and cm.prediction["predicted"] == len(held)
    errors = []
    for i, row in enumerate(cm.keys):
        for j, key in enumerate(row):
            assert key is not None
            truth = law_ms(ops[key])
            if key in measured:
                assert not cm.predicted[i, j] and abs(float(cm.C[i, j]) - truth) <= 1e-9 * truth + 1e-12
            else:
                assert cm.predicted[i, j] and cm.lo[i, j] < cm.C[i, j] < cm.hi[i, j]
                errors.append(abs(float(cm.C[i, j]) / truth - 1))
    assert len(errors) > 0.5 * cm.C.numel()  # most cells are predicted widths
    assert statistics.median(errors) < 0.10, f"median |error| {statistics.median(errors):.3f} of predicted widths"
