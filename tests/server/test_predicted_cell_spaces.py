"""`missing: "predict"` on /cell-costs of a real server (issue 20 for cell spaces): a synthetic target
(tests.server.helpers.law_ms) has 30% of autortnet's ops left unmeasured; their edge-op cells, the
preprocessing and depth sums and the fixed ops come predicted, flagged, with intervals, and never
without asking."""

from __future__ import annotations

import random
import statistics
from typing import Any, Dict, List

import httpx
import pytest

from lutcore.ops import OpSpec
from lutcore.spaces import get_space
from tests.server.helpers import TARGET, TARGET_DICT, batch, item, law_ms

SPACE, RES = "autortnet", "64x128"  # hyper-cells with depth options, preprocessing, fixed ops: 39 unique ops


def post(srv: Any, body: Dict[str, Any]) -> httpx.Response:
    return httpx.post(srv.api + "/cell-costs", json=body, timeout=120)


def measure(srv: Any, specs: List[OpSpec], target: Dict[str, Any] = TARGET_DICT, device: str = "xavier-01") -> None:
    r = httpx.post(srv.api + "/measurements", json=batch([item(s, law_ms(s)) for s in specs], device=device,
                                                         target=target),
                   headers={"Authorization": f"Bearer {srv.agent_token(device)}"}, timeout=120)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


@pytest.fixture
def srv(start_server, db_url):
    return start_server(db_url)


def test_cell_costs_predict_flagged_within_intervals_and_never_silent(srv):
    sp = get_space(SPACE, RES)
    ops = [s for s in sp.unique_ops().values() if not s.is_identity]
    held = {s.key for s in random.Random(5).sample(ops, len(ops) * 3 // 10)}
    by_key = {s.key: s for s in ops}
    measure(srv, [s for s in ops if s.key not in held])
    body = {"space": SPACE, "resolution": RES, "target": TARGET}

    pred = post(srv, {**body, "missing": "predict"})
    assert pred.status_code == 200, pred.text
    plain = post(srv, body)
    assert plain.status_code == 200 and plain.headers["etag"] != pred.headers["etag"]
    p, m = pred.json(), plain.json()
    for k in ("predicted", "predicted_cells", "lo", "hi", "prediction", "fixed_lo_ms"):
        assert k not in m, k  # nothing predicted without asking
    assert set(m["missing"]) == set(p["missing"]) == held and p["coverage"] == m["coverage"]
    assert set(p["predicted"]) == held and p["prediction"]["predicted"] == len(held)
    assert p["prediction"]["n_train"] == len(ops) - len(held) and p["prediction"]["network_rule"] == "linear"

    errors, inside = [], 0
    for k, v in p["predicted"].items():
        assert 0 < v["lo_ms"] < v["value_ms"] < v["hi_ms"]
        truth = law_ms(by_key[k])
        errors.append(abs(v["value_ms"] / truth - 1))
        inside += v["lo_ms"] <= truth <= v["hi_ms"]
    assert inside >= 0.7 * len(held), f"{inside}/{len(held)} held-out ops inside their intervals"
    assert statistics.median(errors) < 0.15, f"median error {statistics.median(errors):.3f}"

    def val(k: str, f: str = "value_ms") -> float:  # a key's served value (or interval end); identities 0
        return p["predicted"][k][f] if k in held else 0.0 if by_key.get(k) is None else law_ms(by_key[k])

    flagged = set()
    for i, cell in enumerate(p["layout"]["cells"]):
        add = cell["add"]  # every non-zero edge carries one add of its node (the layout's glue)
        for e, krow in enumerate(cell["keys"]):
            for o, k in enumerate(krow):
                got, was = p["C"][i][e][o], m["C"][i][e][o]
                lo, hi = p["lo"]["C"][i][e][o], p["hi"]["C"][i][e][o]
                if k is None:  # a zero edge
                    assert p["predicted_cells"][i][e][o] is False and got == was == lo == hi == 0.0
                elif k in held or add in held:
                    flagged.add(k)
                    assert p["predicted_cells"][i][e][o] is True and was is None
                    assert (got, lo, hi) == pytest.approx(tuple(val(k, f) + val(add, f)
                                                                 for f in ("value_ms", "lo_ms", "hi_ms")))
                else:  # measured or identity: unchanged, no width
                    assert p["predicted_cells"][i][e][o] is False and got == was == lo == hi is not None
                    assert got == pytest.approx(val(k) + val(add), rel=1e-9)
        # preprocessing + concat - one add per node, from measured and predicted values
        glue = [*cell["pre"], cell["concat"], add]
        want = sum(val(k) for k in cell["pre"]) + val(cell["concat"]) - cell["nodes"] * val(add)
        assert p["pre"][i] == pytest.approx(want, rel=1e-6)
        assert p["lo"]["pre"][i] <= p["pre"][i] <= p["hi"]["pre"][i]
        assert (p["lo"]["pre"][i] < p["hi"]["pre"][i]) == any(k in held for k in glue)
        if not any(k in held for k in glue):
            assert m["pre"][i] == pytest.approx(p["pre"][i], rel=1e-9)
    for h, per in enumerate(p["depth"]):
        for d, v in enumerate(per):
            assert v is not None and p["lo"]["depth"][h][d] <= v <= p["hi"]["depth"][h][d]
    for f in p["fixed"]:
        assert f["predicted"] is (f["key"] in held) and f["lo_ms"] <= f["value_ms"] <= f["hi_ms"]
    assert p["fixed_lo_ms"] <= p["fixed_ms"] <= p["fixed_hi_ms"]
    assert flagged  # some held-out keys sit on edges; the rest are preprocessing, depth or fixed ops

    again = post(srv, {**body, "missing": "predict"})  # served from the rendered bytes
    assert again.headers["etag"] == pred.headers["etag"] and again.content == pred.content
    newly = sorted(held)[0]
    measure(srv, [by_key[newly]])  # a measurement replaces its prediction at once
    after = post(srv, {**body, "missing": "predict"}).json()
    assert newly not in after["predicted"] and after["prediction"]["predicted"] == len(held) - 1


def test_cell_costs_predict_errors_are_clear(srv):
    ops = [s for s in get_space(SPACE, RES).unique_ops().values() if not s.is_identity]
    other = {**TARGET_DICT, "device": "orin"}
    measure(srv, ops[:3], other, device="orin-01")
    body = {"space": SPACE, "resolution": RES, "target": "orin/tensorrt/fp16"}
    r = post(srv, {**body, "missing": "predict"})
    assert r.status_code == 422 and "has 3 measured entries" in r.json()["detail"], r.text
    assert post(srv, body).status_code == 200  # the default answers as before
    r = post(srv, {**body, "missing": "guess"})
    assert r.status_code == 422 and "Traceback" not in r.text
