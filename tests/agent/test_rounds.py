"""Op rounds: estimators, the per-round budget, merging rounds, extra rounds for noisy ops, and the
session's rounds mode against a machine whose speed changes while the LUT is filled."""

from __future__ import annotations

from typing import Dict, List

import pytest

from lutcore.ops import InvertedResidual, OpSpec
from profiler_agent.rounds import RoundPlan, chosen_rounds, combine, merge, spread
from profiler_agent.session import ProfileSession
from profiler_agent.timing import TimingProtocol, TimingResult
from tests.agent.test_session import SyntheticBackend

P = TimingProtocol(ci=0.01, max_time_s=1.0, min_sample_time_s=0.0)


def test_estimators_keep_the_rounds_they_say():
    xs = [1.2, 1.0, 2.0, 1.1, 1.05]
    assert chosen_rounds(xs, "fast-half") == [1, 3, 4]
    assert combine(xs, "fast-half") == pytest.approx((1.0 + 1.1 + 1.05) / 3)
    assert chosen_rounds(xs, "min") == [1] and combine(xs, "min") == 1.0
    assert combine(xs, "median") == 1.1 and chosen_rounds(xs, "median") == [0, 1, 2, 3, 4]
    assert spread(xs, "fast-half") == pytest.approx(0.1 / 1.05)
    assert spread(xs, "median") == pytest.approx(1.0 / 1.1)
    with pytest.raises(ValueError, match="estimator"):
        combine(xs, "mean")
    with pytest.raises(ValueError, match="no rounds"):
        combine([], "min")


def test_plan_checks_its_knobs_and_splits_the_budget():
    for bad in ({"rounds": 0}, {"estimator": "avg"}, {"spread_tol": 0}, {"max_extra": -1}):
        with pytest.raises(ValueError):
            RoundPlan(**bad)
    p = TimingProtocol(max_time_s=2.0, warmup_s=0.025, max_warmup_s=0.5)
    rp = RoundPlan(rounds=4).round_protocol(p)
    assert rp.max_time_s == pytest.approx(0.5) and rp.max_warmup_s == pytest.approx(0.125)
    assert rp.ci == p.ci and rp.min_samples == p.min_samples
    assert RoundPlan(rounds=1).round_protocol(p) is p
    plan = RoundPlan(spread_tol=0.05, max_extra=1)
    assert plan.needs_more([1.0, 1.2, 1.3, 1.4], 0)  # kept rounds 1.0 and 1.2 are 18% apart
    assert not plan.needs_more([1.0, 1.2, 1.3, 1.4], 1)  # extra rounds spent
    assert not plan.needs_more([1.0, 1.01, 1.3, 1.4], 0)


def _result(samples: List[float]) -> TimingResult:
    from profiler_agent.timing import summarize

    return TimingResult(stats=summarize(samples), samples=list(samples), outlier_indices=[], iters_per_sample=1,
                        warmup_iters=3, warmup_s=0.01, timed_s=sum(samples) / 1e3, wall_s=0.02, converged=True,
                        stop_reason="ci")


def test_merge_pools_only_the_kept_rounds():
    rounds = [_result([2.0] * 8), _result([1.0] * 6 + [1.02] * 2), _result([1.1] * 8), _result([3.0] * 8)]
    m = merge(rounds, "fast-half")
    assert m.stats.n == 16 and max(m.samples) == pytest.approx(1.1)  # rounds 1 and 2 only
    assert 1.0 <= m.stats.median_ms <= 1.1
    assert m.warmup_iters == 12 and m.stop_reason == "rounds"
    assert merge(rounds[:1], "fast-half") is rounds[0]


class PhasedBackend(SyntheticBackend):
    """A virtual machine whose speed changes with the number of ops timed so far.

    ``slow_calls``: indices of time_op calls that run 1.6x slower (a busy neighbour for a while);
    ``noisy``: op keys whose every other call is 1.5x slower (a bimodal op).
    """

    def __init__(self, slow_calls: range = range(0), noisy: tuple = ()) -> None:
        super().__init__()
        self.slow_calls = slow_calls
        self.noisy = set(noisy)
        self.seen: Dict[str, int] = {}

    @staticmethod
    def true_ms(spec: OpSpec) -> float:
        return 1.0 + spec.c_out / 100

    def cost_ms(self, spec: OpSpec) -> float:
        factor = 1.6 if len(self.calls) in self.slow_calls else 1.0
        k = self.seen.get(spec.key, 0)
        self.seen[spec.key] = k + 1
        if spec.key in self.noisy and k % 2 == 0:
            factor *= 1.5
        return self.true_ms(spec) * factor


def specs(n: int) -> List[OpSpec]:
    return [InvertedResidual(c_in=8, h=8, w=8, c_out=8 * (i + 1), kernel=3) for i in range(n)]


def test_rounds_recover_the_fast_state_a_single_pass_misses():
    ops = specs(10)
    # the machine is slow for a stretch of 10 consecutive timings: a single pass times 10 of 10 ops
    # there if the stretch comes first; five rounds give every op four other chances
    single = ProfileSession(PhasedBackend(range(0, 10)), P, canary_every=0).run(ops)
    plan = RoundPlan(rounds=5, spread_tol=0.5)
    rounded = ProfileSession(PhasedBackend(range(0, 10)), P, canary_every=0, plan=plan).run(ops)
    err_single = [m.stats.median_ms / PhasedBackend.true_ms(o) - 1 for m, o in zip(single, ops)]
    err_rounds = [m.stats.median_ms / PhasedBackend.true_ms(o) - 1 for m, o in zip(rounded, ops)]
    assert min(err_single) > 0.5  # every op carries the slowdown
    assert max(abs(e) for e in err_rounds) < 0.01
    env = rounded[0].env["timing"]["rounds"]
    assert env["n"] == 5 and len(env["medians_ms"]) == 5 and len(env["kept"]) == 3 and env["extra"] == 0
    assert rounded[0].env["timing"]["stop_reason"] == "rounds"


def test_each_round_is_a_new_shuffle_over_the_batch():
    ops = specs(8)
    b = PhasedBackend()
    ProfileSession(b, P, canary_every=0, plan=RoundPlan(rounds=3), seed=4).run(ops)
    passes = [b.calls[i * 8:(i + 1) * 8] for i in range(3)]
    assert all(sorted(p) == sorted(o.key for o in ops) for p in passes)
    assert len({tuple(p) for p in passes}) == 3


def test_ops_whose_kept_rounds_disagree_get_extra_rounds_up_to_the_cap():
    ops = specs(6)
    noisy = ops[2].key
    progress: List[tuple] = []
    b = PhasedBackend(noisy=(noisy,))
    s = ProfileSession(b, P, canary_every=0, plan=RoundPlan(rounds=3, spread_tol=0.05, max_extra=2),
                       progress=lambda d, t, k: progress.append((d, t)))
    ms = {m.op.key: m for m in s.run(ops)}
    # 3 rounds of a bimodal op keep a slow one among the faster half (1.5x, 1.0x, 1.5x -> kept 1.0, 1.5);
    # one extra (fast) round makes the kept half agree
    assert b.calls.count(noisy) == 4 and ms[noisy].env["timing"]["rounds"]["extra"] == 1
    assert all(b.calls.count(o.key) == 3 for o in ops if o.key != noisy)
    assert s.remeasured == 1
    assert progress[-1] == (19, 19)  # 3 x 6 plus the extra one
    # after the extra rounds the kept rounds are the fast mode: the value is the op's true time
    assert ms[noisy].stats.median_ms == pytest.approx(PhasedBackend.true_ms(ops[2]), rel=0.01)


def test_extra_rounds_stop_at_the_cap():
    ops = specs(4)
    b = PhasedBackend(noisy=(ops[0].key,))
    ms = ProfileSession(b, P, canary_every=0, plan=RoundPlan(rounds=3, spread_tol=0.05, max_extra=0)).run(ops)
    assert b.calls.count(ops[0].key) == 3
    rounds = ms[0].env["timing"]["rounds"]
    assert rounds["extra"] == 0 and rounds["spread"] > 0.3  # the disagreement is kept for audits


def test_cli_rounds_default_to_the_backends_own():
    from profiler_agent import cli
    from profiler_agent.cli.components import round_plan

    args = cli.build_parser().parse_args(["profile", "--space", "x", "-o", "y"])
    assert args.rounds is None and args.estimator == "fast-half"

    class Gpu:
        default_rounds = 1

    assert round_plan(args, Gpu()).rounds == 1
    assert round_plan(args, object()).rounds == 5
    args.rounds = 3
    assert round_plan(args, Gpu()).rounds == 3
    args.rounds = 0
    with pytest.raises(cli.UsageError, match="rounds=0"):
        round_plan(args, Gpu())
    validate = cli.build_parser().parse_args(["validate", "--space", "x"])
    assert round_plan(validate, Gpu()) is None  # networks have rounds of their own there


def test_backend_provenance_reaches_the_measurement_through_the_rounds():
    class Tagged(SyntheticBackend):
        def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
            res = super().time_op(spec, protocol)
            res.env = {"sm_clock_mhz": 1980, "call": len(self.calls)}
            return res

    ms = ProfileSession(Tagged(), P, canary_every=0, plan=RoundPlan(rounds=3)).run(specs(2))
    prov = ms[0].env["timing"]["provenance"]
    assert prov["sm_clock_mhz"] == 1980 and 1 <= prov["call"] <= 6
    single = ProfileSession(Tagged(), P, canary_every=0).run(specs(1))
    assert single[0].env["timing"]["provenance"]["sm_clock_mhz"] == 1980
