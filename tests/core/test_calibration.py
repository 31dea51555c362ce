"""Calibration: recovers a known systematic error and reports held-out error honestly."""

from __future__ import annotations

import random

import pytest

from lutcore.calibration import Calibration, Validation, summarize


def synthetic(n: int, a: float, b: float, c: float, noise: float, seed: int):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pred = rng.uniform(5, 50)
        ops = rng.randint(10, 30)
        meas = (a * pred + b + c * ops) * (1 + rng.gauss(0, noise))
        out.append(Validation(f"a{i}", pred, meas, ops))
    return out


def test_fit_recovers_scale_and_offset():
    train = synthetic(30, 0.8, 1.5, 0.0, 0.0, 1)
    cal = Calibration.fit(train)
    assert cal.a == pytest.approx(0.8, rel=1e-9) and cal.b == pytest.approx(1.5, rel=1e-9)
    assert cal.fit_error is not None
    assert cal.fit_error["max_abs_error"] < 1e-9


def test_per_op_feature_and_held_out_scoring():
    train, test = synthetic(40, 0.9, 0.5, -0.05, 0.01, 2), synthetic(20, 0.9, 0.5, -0.05, 0.01, 3)
    raw = summarize([v.error for v in test])
    cal = Calibration.fit(train, ("scale", "offset", "per_op"))
    after = summarize([cal.error(v) for v in test])
    assert after["median_abs_error"] < 0.02 < raw["median_abs_error"]
    assert cal.c == pytest.approx(-0.05, abs=0.03)


def test_summary_shares_and_round_trip():
    s = summarize([0.01, -0.04, 0.07, -0.2])
    assert s["within_5pct"] == 0.5 and s["within_10pct"] == 0.75 and s["max_abs_error"] == 0.2
    cal = Calibration(1.1, 0.2, 0.0, 10)
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert Calibration.from_dict(None).apply(3.0) == 3.0


def test_fit_refuses_too_few_or_degenerate():
    with pytest.raises(ValueError, match="at least 3"):
        Calibration.fit(synthetic(2, 1, 0, 0, 0, 4))
    same = [Validation(str(i), 10.0, 12.0, 5) for i in range(5)]
    with pytest.raises(ValueError, match="degenerate"):
        Calibration.fit(same)


def test_select_picks_by_leave_one_out_and_keeps_identity_in_the_race():
    scaled = Calibration.select(synthetic(12, 1.2, 0.0, 0.0, 0.005, 5))
    assert scaled.model in ("scale", "affine") and scaled.a == pytest.approx(1.2, rel=0.02)
    assert scaled.cv_error is not None
    assert scaled.cv_error["identity"] > 0.1 > scaled.cv_error[scaled.model]
    # unbiased noise: a fitted scale or offset only chases it, so the identity wins
    noisy = Calibration.select(synthetic(10, 1.0, 0.0, 0.0, 0.03, 6))
    assert noisy.model == "identity" and (noisy.a, noisy.b) == (1.0, 0.0)
    assert Calibration.from_dict(noisy.to_dict()) == noisy


def test_select_and_fit_model_refuse_bad_input():
    with pytest.raises(ValueError, match="unknown calibration model"):
        Calibration.select(synthetic(10, 1, 0, 0, 0.01, 7), ["magic"])
    with pytest.raises(ValueError, match="at least 3"):
        Calibration.select(synthetic(2, 1, 0, 0, 0.01, 7))
    assert Calibration.fit_model(synthetic(5, 1.1, 0, 0, 0, 8), "scale").a == pytest.approx(1.1)


def test_select_keeps_rich_models_out_until_there_are_enough_validations():
    few = Calibration.select(synthetic(5, 1.2, 0.5, 0.0, 0.0, 9))
    assert few.skipped is not None
    assert few.model in ("identity", "scale") and set(few.skipped) == {"affine", "affine+per_op"}
    assert "needs 6 validations, has 5" in few.skipped["affine"]
    assert "not tried: affine" in few.describe() and "random:N" in few.describe()
    assert Calibration.from_dict(few.to_dict()) == few
    enough = Calibration.select(synthetic(12, 1.2, 0.5, 0.0, 0.0, 9))
    assert enough.skipped is None and enough.model == "affine" and "not tried" not in enough.describe()


def test_fit_split_is_one_seeded_rule_whatever_the_order():
    from lutcore.calibration import fit_split

    names = [f"s:random:{i}" for i in range(20)]
    a = fit_split(names, 0.5, seed=3)
    assert len(a) == 10 and set(a) <= set(names)
    assert fit_split(list(reversed(names)), 0.5, seed=3) == a  # input order does not matter
    assert fit_split(names, 0.5, seed=4) != a
    assert len(fit_split(names, 1.0, seed=3)) == 20 and len(fit_split(names[:4], 0.1, seed=3, minimum=3)) == 3
    with pytest.raises(ValueError, match="fit_share"):
        fit_split(names, 0.0, seed=3)
