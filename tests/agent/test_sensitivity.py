"""A speed sensitivity fitted per session: the fit recovers the share work felt, keeps the applied one
when the data cannot say, and the session's ops and validate's networks come out rescaled by it."""

from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from lutcore.ops import OpSpec
from lutcore.spaces import get_arch, get_space
from profiler_agent.rounds import RoundPlan
from profiler_agent.session import ProfileSession
from profiler_agent.timing import SpeedReference, TimingProtocol, TimingResult, summarize
from profiler_agent.timing.sensitivity import (
    DEFAULT_SENSITIVITY,
    SensitivityFit,
    correction,
    fit_sensitivity,
    rescale,
    session_fit,
)
from profiler_agent.validate import ArchResult, LutValues, validate
from tests.agent.test_rounds import specs
from tests.agent.test_session import SyntheticBackend

APPLIED = 0.5
P = TimingProtocol(ci=0.01, max_time_s=1.0, min_sample_time_s=0.0)
SLOWDOWNS = (1.0, 1.6, 1.2, 1.8, 1.05, 1.4, 1.3, 1.7, 1.1)  # the machine's speed, call after call


def _stored(true_ms: float, slowdown: float, felt: float) -> float:
    """What a round stores: the work slowed by ``felt`` of the slowdown, divided by the applied correction."""
    return true_ms * correction(slowdown, felt) / correction(slowdown, APPLIED)


def _items(felt: float, n: int = 30, rounds: int = 5, noise: float = 0.01, seed: int = 0,
           motion: Sequence[float] = (1.0, 1.8)) -> List[List[Tuple[float, Optional[float]]]]:
    rng = random.Random(seed)
    out: List[List[Tuple[float, Optional[float]]]] = []
    for _ in range(n):
        true = math.exp(rng.uniform(math.log(0.05), math.log(20.0)))
        row: List[Tuple[float, Optional[float]]] = []
        for _ in range(rounds):
            f = rng.uniform(*motion)
            row.append((_stored(true, f, felt) * (1 + rng.gauss(0.0, noise)), f))
        out.append(row)
    return out


@pytest.mark.parametrize("felt", [0.25, 0.75, 1.0])
def test_the_fit_recovers_the_share_the_work_felt(felt):
    fit = fit_sensitivity(_items(felt), APPLIED)
    assert fit.fitted and fit.items == 30
    assert fit.s == pytest.approx(felt, abs=0.1)
    assert fit.motion > 0.3


def test_a_quiet_machine_or_too_few_items_keep_the_applied_share():
    quiet = fit_sensitivity(_items(1.0, motion=(1.0, 1.02)), APPLIED)
    assert not quiet.fitted and quiet.s == APPLIED and "barely moved" in quiet.reason
    few = fit_sensitivity(_items(1.0, n=5), APPLIED)
    assert not few.fitted and few.s == APPLIED and "5 item(s)" in few.reason
    # items timed once, or without a slowdown, are no evidence
    once = fit_sensitivity([[(1.0, 1.5)]] * 20 + [[(1.0, None), (2.0, None)]] * 20, APPLIED)
    assert not once.fitted and once.items == 0


def test_rescaling_is_exact_and_reversible():
    assert rescale(2.0, 1.5, 0.5, 0.5) == 2.0
    assert rescale(rescale(3.0, 1.7, 0.5, 1.0), 1.7, 1.0, 0.5) == pytest.approx(3.0)
    # a round stored at 0.5 whose work felt all of a 1.6x slowdown is 1.6 / 1.3 of its true time
    assert rescale(_stored(1.0, 1.6, 1.0), 1.6, APPLIED, 1.0) == pytest.approx(1.0)
    fit = SensitivityFit(1.0, APPLIED, True, "", 10, 0.5)
    samples = [1.3, 1.32, 1.28, 1.31]
    res = TimingResult(stats=summarize(samples), samples=samples, outlier_indices=[], iters_per_sample=4,
                       warmup_iters=1, warmup_s=0.0, timed_s=0.0, wall_s=0.0, converged=True, stop_reason="ci",
                       slowdown=1.6)
    out = fit.result(res)
    assert out.stats.median_ms == pytest.approx(res.stats.median_ms * 1.3 / 1.6)
    assert out.stats.iters_per_sample == 4 and out.slowdown == 1.6
    assert fit.result(TimingResult(**dict(res.__dict__, slowdown=None))).samples == samples
    assert fit.value(2.0, None) == 2.0


def _reference(auto: bool) -> SpeedReference:
    return SpeedReference(lambda: None, sensitivity=APPLIED, auto_sensitivity=auto)


def test_only_an_auto_reference_asks_for_a_fit():
    items = _items(1.0)
    assert session_fit(None, items) is None
    assert session_fit(_reference(False), items) is None
    got = session_fit(_reference(True), items)
    assert got is not None and got.fitted


class SlowingMachine(SyntheticBackend):
    """Ops and networks that feel ``felt`` of the machine's slowdown, stored as a 0.5 reference stores them."""

    def __init__(self, felt: float, auto: bool) -> None:
        super().__init__()
        self.felt = felt
        self.reference = _reference(auto)
        self.n = 0

    def _round(self, true_ms: float) -> TimingResult:
        f = SLOWDOWNS[self.n % len(SLOWDOWNS)]
        self.n += 1
        ms = _stored(true_ms, f, self.felt)
        samples = [ms * k for k in (0.999, 1.0, 1.001)]
        return TimingResult(stats=summarize(samples), samples=samples, outlier_indices=[], iters_per_sample=1,
                            warmup_iters=1, warmup_s=0.0, timed_s=0.0, wall_s=0.0, converged=True,
                            stop_reason="ci", slowdown=f)

    @staticmethod
    def true_ms(spec: OpSpec) -> float:
        return 1.0 + spec.c_out / 100

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        self.calls.append(spec.key)
        return self._round(self.true_ms(spec))

    @staticmethod
    def net_ms(arch: Any) -> float:
        return 10.0 + len(arch.all_ops())

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        return self._round(self.net_ms(arch))


def _op_errors(auto: bool) -> Tuple[List[float], ProfileSession, list]:
    ops = specs(12)
    session = ProfileSession(SlowingMachine(1.0, auto), P, canary_every=0, plan=RoundPlan(rounds=5, max_extra=0))
    ms = session.run(ops)
    return [m.stats.median_ms / SlowingMachine.true_ms(o) - 1 for m, o in zip(ms, ops)], session, ms


def test_a_session_with_an_auto_reference_rescales_its_ops_to_the_fitted_share():
    fixed, session, _ = _op_errors(auto=False)
    assert max(fixed) > 0.03 and session.sensitivity_fit is None  # at 0.5, every slowed round carries 1/6 or more
    fitted, session, ms = _op_errors(auto=True)
    assert max(abs(e) for e in fitted) < 0.005
    assert session.sensitivity_fit is not None and session.sensitivity_fit.s == pytest.approx(1.0)
    env = ms[0].env["timing"]["sensitivity"]
    assert env["fitted"] and env["s"] == pytest.approx(1.0) and env["applied"] == APPLIED
    # the rounds an op keeps are its rescaled ones
    rounds = ms[0].env["timing"]["rounds"]["medians_ms"]
    assert max(rounds) / min(rounds) == pytest.approx(1.0, abs=0.005)


RES = "64x128"
NAMES = [f"squeezenas-small:random:{i}" for i in range(1, 11)]


def _env(r: ArchResult) -> Dict[str, Any]:
    assert r.env is not None, r.arch
    return r.env


def test_validate_with_an_auto_reference_rescales_its_networks():
    lut = LutValues({k: 1.0 for k in get_space("squeezenas-small", RES).unique_ops()}, "t")
    true = {n: SlowingMachine.net_ms(get_arch(n, RES)) for n in NAMES}
    fixed = validate("squeezenas-small", RES, NAMES, SlowingMachine(1.0, False), P, lut, rounds=5, max_extra=0)
    assert max(r.measured_ms / true[r.arch] - 1 for r in fixed) > 0.03
    assert all("sensitivity" not in (r.env or {}) for r in fixed)
    fitted = validate("squeezenas-small", RES, NAMES, SlowingMachine(1.0, True), P, lut, rounds=5, max_extra=0)
    assert max(abs(r.measured_ms / true[r.arch] - 1) for r in fitted) < 0.005
    assert all(r.env and r.env["sensitivity"]["s"] == pytest.approx(1.0) for r in fitted)
    # every network keeps its rounds' slowdowns, in round order, beside its rounds
    for r in fixed + fitted:
        speed = _env(r)["speed"]
        assert len(speed["slowdowns"]) == len(r.rounds) == 5 and set(speed["slowdowns"]) <= set(SLOWDOWNS)
        assert speed["base_us"] is None  # this reference was never sized on a machine
    assert len({tuple(_env(r)["speed"]["slowdowns"]) for r in fixed}) > 1  # each its own rounds, not one list


def test_the_cli_takes_auto_or_a_share_in_range(capsys):
    from profiler_agent import cli
    from profiler_agent.cli import components

    parse = cli.build_parser().parse_args
    # one fixed share by default: batches that fit their own disagree as a whole (docs/agent.md, "Stop 19")
    assert parse(["profile", "--space", "x", "-o", "y"]).speed_sensitivity == DEFAULT_SENSITIVITY
    assert parse(["profile", "--space", "x", "-o", "y", "--speed-sensitivity", "auto"]).speed_sensitivity == "auto"
    assert parse(["profile", "--space", "x", "-o", "y", "--speed-sensitivity", "0.8"]).speed_sensitivity == 0.8
    with pytest.raises(SystemExit) as e:
        parse(["profile", "--space", "x", "-o", "y", "--speed-sensitivity", "fast"])
    assert e.value.code == 2 and "neither a number nor 'auto'" in capsys.readouterr().err
    args = parse(["profile", "--space", "x", "-o", "y", "--speed-ref", "--speed-sensitivity", "3"])
    with pytest.raises(cli.UsageError, match="between 0 and 2"):
        components.backend(args)
