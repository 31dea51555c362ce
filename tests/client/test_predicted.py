"""search_client's missing="predict" against a real server over HTTP, on SQLite and PostgreSQL (issue 20):
predicted cells come flagged with intervals, `predict_latency` says how much of its answer is predicted
and bounds it, and nothing predicted appears without asking."""

from __future__ import annotations

import random

import httpx
import pytest
import torch

from lutcore.spaces import get_space
from search_client import LUTClient, MissingEntriesError
from tests.server.helpers import TARGET, TARGET_DICT, batch, item, law_ms

SPACE, RES = "squeezenas-small", "64x128"


@pytest.fixture
def srv(start_server, db_url):
    return start_server(db_url)


def _measure_most(srv):
    """70% of the space's ops measured at the known law; the held-out keys."""
    ops = [s for s in get_space(SPACE, RES).unique_ops().values() if not s.is_identity]
    held = {s.key for s in random.Random(11).sample(ops, len(ops) * 3 // 10)}
    auth = {"Authorization": f"Bearer {srv.agent_token('xavier-01')}"}
    body = batch([item(s, law_ms(s)) for s in ops if s.key not in held], device="xavier-01", target=TARGET_DICT)
    r = httpx.post(srv.api + "/measurements", json=body, headers=auth, timeout=120)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    return {s.key: s for s in ops}, held


def test_client_predicted_cells_lookup_and_latency(srv):
    by_key, held = _measure_most(srv)
    with LUTClient(srv.url, srv.admin_token) as c:
        with pytest.raises(MissingEntriesError):  # never silent: the default still refuses
            c.cost_matrix(SPACE, TARGET, resolution=RES)
        nan = c.cost_matrix(SPACE, TARGET, resolution=RES, missing="nan", dtype=torch.float64)
        assert nan.predicted is None and nan.lo is None
        cm = c.cost_matrix(SPACE, TARGET, resolution=RES, missing="predict", dtype=torch.float64)
        assert cm.predicted is not None and cm.lo is not None and cm.hi is not None
        assert set(cm.missing) == held and cm.prediction and cm.prediction["predicted"] == len(held)
        valid = ~cm.mask
        assert not torch.isnan(cm.C[valid]).any()
        flagged = {cm.keys[i][j] for i, j in cm.predicted.nonzero().tolist()}
        assert flagged == {k for row in cm.keys for k in row if k in held}
        assert torch.equal(cm.C[valid & ~cm.predicted], nan.C[valid & ~cm.predicted])  # measured: unchanged
        assert torch.isnan(nan.C[cm.predicted]).all()
        assert (cm.lo <= cm.C).all() and (cm.hi >= cm.C).all()
        assert (cm.lo[cm.predicted] < cm.hi[cm.predicted]).all()
        moved = cm.to(dtype=torch.float32)
        assert moved.lo is not None and moved.lo.dtype == torch.float32 and moved.predicted is not None

        keys = sorted(held)[:4]
        plain = c.lookup(keys, TARGET)
        assert plain.predicted == {} and set(plain.missing) == set(keys) and plain.values == {}
        c.register_space(SPACE, TARGET, resolution=RES)  # the server learns the specs of unmeasured ops
        got = c.lookup(keys, TARGET, missing="predict")
        assert set(got.predicted) == set(keys) and got.values == {} and set(got.missing) == set(keys)
        assert all(p.lo < p.value < p.hi for p in got.predicted.values())

        rng = random.Random(3)
        covered, shares = 0, []
        for _ in range(30):
            choice = [rng.choice([j for j in range(len(cm.candidates)) if not bool(cm.mask[i, j])])
                      for i in range(cm.C.shape[0])]
            p = c.predict_latency(SPACE, choice, TARGET, resolution=RES, missing="predict", calibration=None)
            keys_used = [cm.keys[i][j] for i, j in enumerate(choice)] + [f.key for f in cm.fixed_ops]
            n_held = sum(1 for k in keys_used if k in held)
            assert p.predicted_ops == n_held
            assert p.lo_ms is not None and p.hi_ms is not None and p.lo_ms <= p.ms <= p.hi_ms
            if n_held == 0:
                assert p.predicted_share == 0.0 and p.lo_ms == p.ms == p.hi_ms
            else:
                assert 0.0 < p.predicted_share < 1.0 and p.hi_ms > p.lo_ms
            truth = sum(0.0 if by_key.get(k) is None else law_ms(by_key[k]) for k in keys_used if k)
            covered += p.lo_ms <= truth <= p.hi_ms
            shares.append(p.predicted_share)
        assert max(shares) > 0.0
        assert covered >= 27, f"the linear rule held the true sum for {covered}/30 networks"
        with pytest.raises(MissingEntriesError):
            c.predict_latency(SPACE, choice_with_held(cm, held), TARGET, resolution=RES)


def choice_with_held(cm, held):
    """A network that runs at least one unmeasured op."""
    i, j = next((i, j) for i, row in enumerate(cm.keys) for j, k in enumerate(row) if k in held)
    return [j if r == i else next(q for q in range(len(cm.candidates)) if not bool(cm.mask[r, q]))
            for r in range(cm.C.shape[0])]


def test_client_predict_needs_a_server_and_enough_entries(srv, tmp_path):
    ops = [s for s in get_space(SPACE, RES).unique_ops().values() if not s.is_identity][:3]
    auth = {"Authorization": f"Bearer {srv.agent_token('xavier-01')}"}
    r = httpx.post(srv.api + "/measurements", json=batch([item(s, law_ms(s)) for s in ops], device="xavier-01",
                                                         target=TARGET_DICT), headers=auth, timeout=60)
    assert r.status_code == 200
    with LUTClient(srv.url) as c:
        with pytest.raises(Exception, match="has 3 measured entries"):
            c.cost_matrix(SPACE, TARGET, resolution=RES, missing="predict")
        doc = c.export(TARGET)
    offline = LUTClient.from_export(doc)
    with pytest.raises(Exception, match="LUT file"):
        offline.cost_matrix(SPACE, TARGET, resolution=RES, missing="predict")
    with pytest.raises(Exception, match="LUT file"):
        offline.lookup([ops[0].key], TARGET, missing="predict")
