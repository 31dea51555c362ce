"""Calibrations that follow the LUT: fitted on today's sums, stale only when those sums move, and a
refit job queued by the ingest that moved them. SQLite and PostgreSQL, through the real app."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pytest

from lut_server.staleness import STALE_TOL, drift
from lutcore.spaces import get_arch, get_space, parse_arch_list
from tests.server.helpers import batch, item

TARGET = "cpu-x86/pytorch-cpu/fp32@threads=1"
TARGET_DICT = {"device": "cpu-x86", "backend": "pytorch-cpu", "precision": "fp32", "batch": 1,
               "settings": {"threads": "1"}}
SPACE, RES = "squeezenas-small", "64x128"
SCALE = 1.25  # measured = SCALE * LUT sum


def op_value(i: int) -> float:
    return 0.05 + (i % 7) * 0.03


def fill(api: Any, factor: float = 1.0, device: str = "xavier-01", only: int = 0) -> Dict[str, Any]:
    """One run of every op of the space (or of the first ``only``), each at ``factor`` x its base value."""
    ops = sorted(get_space(SPACE, RES).unique_ops().items())
    ops = [(k, s) for k, s in ops if not s.is_identity][: only or None]
    items = [item(s, op_value(i) * factor) for i, (_, s) in enumerate(ops)]
    headers = api.agent if device == "xavier-01" else api.token("agent", device, "cpu-x86")
    return api.post("/measurements", batch(items, target=TARGET_DICT, device=device), headers=headers)


def lut_sum(name: str) -> float:
    ops = sorted(get_space(SPACE, RES).unique_ops().items())
    value = {k: op_value(i) for i, (k, s) in enumerate((k, s) for k, s in ops if not s.is_identity)}
    return sum(value[s.key] for _, s in get_arch(name, RES).all_ops())


def validate_and_fit(api: Any, names: List[str], predicted_factor: float = 1.0) -> Dict[str, Any]:
    results = [{"arch": n, "kind": "random", "predicted_ms": lut_sum(n) * predicted_factor,
                "measured_ms": SCALE * lut_sum(n), "n_ops": len(get_arch(n, RES).all_ops()), "rounds": [1.0]}
               for n in names]
    api.post("/validations", {"run_id": uuid.uuid4().hex, "target": TARGET, "device_name": "xavier-01",
                              "space": SPACE, "resolution": RES, "lut_version": 1, "results": results})
    return api.post("/calibrations/fit", {"target": TARGET, "space": SPACE, "resolution": RES, "fit_share": 1.0})


def calibration(api: Any) -> Dict[str, Any]:
    return api.post("/cost-matrix", {"space": SPACE, "resolution": RES, "target": TARGET})["calibration"]


def claim_validate_jobs(api: Any) -> List[Dict[str, Any]]:
    got = api.post("/jobs/claim", {"target": TARGET, "n": 10, "lease_s": 60})["jobs"]
    return [j for j in got if j["kind"] == "validate"]


def test_drift_is_the_largest_move_of_a_basis_sum():
    assert drift({"a": 10.0, "b": 20.0}, {"a": 10.5, "b": 19.0}) == pytest.approx(0.05)
    assert drift({"a": 10.0}, {"b": 1.0}) is None
    assert drift({}, {}) is None


def test_calibration_rests_on_todays_sums_and_goes_stale_only_when_they_move(api):
    names = parse_arch_list("random:8", SPACE, 3)
    fill(api)
    # validations made against an older LUT (sums 10% low): the fit uses the sums the LUT has now
    fit = validate_and_fit(api, names, predicted_factor=0.9)
    assert fit["calibration"]["a"] == pytest.approx(SCALE, rel=1e-6)
    cal = calibration(api)
    assert cal["stale"] is False and cal["drift"] == pytest.approx(0.0, abs=1e-9)

    # the same values again from a second run: the entries change hands, the sums do not
    out = fill(api)
    assert out["accepted"] > 0 and out["refit_jobs"] == []
    cal = calibration(api)
    assert cal["stale"] is False and cal["drift"] == pytest.approx(0.0, abs=1e-9)

    # a second board 20% slower: the per-board medians' median moves every op by 10%
    out = fill(api, 1.2, device="xavier-02")
    cal = calibration(api)
    assert cal["stale"] is True and cal["drift"] == pytest.approx(0.10, rel=1e-6)
    [job_id] = out["refit_jobs"]
    [job] = claim_validate_jobs(api)
    assert job["id"] == job_id
    payload = job["payload"]
    assert payload["calibrate"] is True and payload.get("fit_share") == 1.0
    assert sorted(payload["archs"].split(",")) == sorted(names)

    # more moves while it is stale queue nothing more (the job is open, and the move is not new)
    assert fill(api, 1.3, device="xavier-03")["refit_jobs"] == []
    # the refit rests on the new sums: fresh again
    validate_and_fit(api, names)
    assert calibration(api)["stale"] is False


def test_a_small_move_stays_within_the_tolerance(api):
    names = parse_arch_list("random:6", SPACE, 11)
    fill(api)
    validate_and_fit(api, names)
    # one op, 40% slower on a second board (its entry moves 20%): each sum moves well under 1%
    out = fill(api, 1.4, device="xavier-02", only=1)
    cal = calibration(api)
    assert out["refit_jobs"] == [] and cal["stale"] is False
    assert 0 <= cal["drift"] <= STALE_TOL
