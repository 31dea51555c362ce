"""search_client's cell costs with missing="predict" against a real server (issue 20 for cell spaces):
the tensors say which cells are predicted, with intervals and the measured coverage, and
`predict_latency` for a cell architecture says how much of its answer is predicted and bounds it."""

from __future__ import annotations

import random

import httpx
import pytest
import torch

from lutcore.spaces import get_arch, get_space
from search_client import ClientError, LUTClient, MissingEntriesError
from tests.server.helpers import TARGET, TARGET_DICT, batch, item, law_ms

SPACE, RES = "autortnet", "64x128"


@pytest.fixture
def srv(start_server, db_url):
    return start_server(db_url)


def test_cell_costs_and_latency_with_predicted_cells(srv):
    sp = get_space(SPACE, RES)
    ops = {k: s for k, s in sp.unique_ops().items() if not s.is_identity}
    held = set(random.Random(9).sample(sorted(ops), len(ops) * 3 // 10))
    r = httpx.post(srv.api + "/measurements", json=batch([item(s, law_ms(s)) for k, s in ops.items() if k not in held],
                                                         device="xavier-01", target=TARGET_DICT),
                   headers={"Authorization": f"Bearer {srv.agent_token('xavier-01')}"}, timeout=120)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    with LUTClient(srv.url) as c:
        with pytest.raises(MissingEntriesError):  # never silent: the default still refuses
            c.cell_costs(SPACE, TARGET, resolution=RES)
        nan = c.cell_costs(SPACE, TARGET, resolution=RES, missing="nan", dtype=torch.float64)
        assert nan.predicted is None and nan.lo is None and not nan.predictions
        costs = c.cell_costs(SPACE, TARGET, resolution=RES, missing="predict", dtype=torch.float64)
        assert costs.predicted is not None and costs.lo is not None and costs.hi is not None
        assert set(costs.predictions) == held == set(costs.missing)
        assert costs.prediction is not None
        assert costs.coverage["measured"] == len(ops) - len(held) and costs.prediction["predicted"] == len(held)
        cells = costs.layout.cells  # a cell's C holds its op and its node's add (the layout's glue)
        flagged = [(cells[i].keys[e][o], cells[i].add) for i, e, o in costs.predicted.nonzero().tolist()]
        assert flagged and all(k in held or add in held for k, add in flagged)
        assert not torch.isnan(costs.C).any() and not torch.isnan(costs.pre).any()
        assert torch.isnan(nan.C[costs.predicted]).all()
        assert torch.equal(costs.C[~costs.predicted], nan.C[~costs.predicted])  # measured: unchanged
        assert (costs.lo.C <= costs.C).all() and (costs.C <= costs.hi.C).all()
        assert (costs.lo.C[costs.predicted] < costs.hi.C[costs.predicted]).all()
        assert costs.lo.fixed <= costs.fixed <= costs.hi.fixed
        moved = costs.to(dtype=torch.float32)
        assert moved.lo is not None and moved.lo.C.dtype == torch.float32 and moved.predicted is not None

        covered, shares = 0, []
        for seed in range(12):
            arch = get_arch(f"{SPACE}:random:{seed}", RES)
            p = c.predict_latency(SPACE, arch, TARGET, resolution=RES, missing="predict", calibration=None)
            keys = [s.key for _, s in arch.all_ops()]
            n_held = sum(k in held for k in keys)
            assert p.predicted_ops == n_held
            assert p.predicted_ms == pytest.approx(sum(costs.predictions[k][0] for k in keys if k in held))
            assert p.lut_ms == pytest.approx(p.predicted_ms + sum(law_ms(ops[k]) for k in keys if k not in held))
            assert p.lo_ms is not None and p.hi_ms is not None
            assert p.lo_ms <= p.ms <= p.hi_ms and (p.lo_ms < p.hi_ms) == (n_held > 0)
            covered += p.lo_ms <= sum(law_ms(ops[k]) for k in keys) <= p.hi_ms
            shares.append(p.predicted_share)
            if n_held:
                with pytest.raises(MissingEntriesError):  # without asking, an unmeasured op is an error
                    c.predict_latency(SPACE, arch, TARGET, resolution=RES)
        assert max(shares) > 0.0 and all(0.0 <= s < 1.0 for s in shares)
        assert covered >= 10, f"the linear rule held the true sum for {covered}/12 networks"
        doc = c.export(TARGET)
    offline = LUTClient.from_export(doc)
    with pytest.raises(ClientError, match="LUT file"):
        offline.cell_costs(SPACE, TARGET, resolution=RES, missing="predict")
    with pytest.raises(ValueError, match="must be one of"):
        offline.cell_costs(SPACE, TARGET, resolution=RES, missing="guess")
