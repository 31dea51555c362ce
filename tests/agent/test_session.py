"""ProfileSession: seeded shuffle, identities skipped, canary drift handling, clocks in env."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from lutcore.ops import InvertedResidual, OpSpec, Skip
from lutcore.records import Measurement
from profiler_agent.backends import get_backend
from profiler_agent.backends.base import Backend, check_timeable
from profiler_agent.session import ProfileSession, pick_canary
from profiler_agent.timing import TimingProtocol, TimingResult, measure

XAVIER = Path(__file__).resolve().parents[1] / "fixtures" / "xavier"
P = TimingProtocol(ci=0.01, max_time_s=1.0, min_sample_time_s=0.0)


class SyntheticBackend(Backend):
    """Times ops on a virtual clock: an op costs (1 + kernel/10) ms times a slowdown factor.

    ``slow`` maps the index of a time_op call to the slowdown in force from then on, which
    models a board that heats up (permanent) or a background job (transient).
    """

    name = "pytorch-cpu"

    def __init__(self, slow: Optional[Dict[int, float]] = None) -> None:
        super().__init__("fp32")
        self.slow = slow or {}
        self.factor = 1.0
        self.calls: List[str] = []
        self.now = 0.0

    def cost_ms(self, spec: OpSpec) -> float:
        """The op's time on this call (``calls`` does not hold it yet)."""
        self.factor = self.slow.get(len(self.calls), self.factor)
        return (1 + getattr(spec, "kernel", 1) / 10 + spec.c_out / 1000) * self.factor

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        check_timeable(spec)
        ms = self.cost_ms(spec)
        self.calls.append(spec.key)

        def fn() -> None:
            self.now += ms / 1e3

        return measure(fn, protocol, timer=lambda: self.now)

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        raise NotImplementedError


def specs(n: int) -> List[OpSpec]:
    return [InvertedResidual(c_in=8, h=8, w=8, c_out=8 * (i + 1), kernel=3) for i in range(n)]


def test_measurements_are_wire_records_in_input_order():
    ops = specs(6) + [Skip(c_in=8, h=8, w=8, c_out=8, mode="identity"), specs(1)[0]]
    seen = []
    s = ProfileSession(SyntheticBackend(), P, canary_every=0, progress=lambda d, t, k: seen.append((d, t, k)))
    ms = s.run(ops, job_ids={ops[2].key: 42})
    assert [m.op.key for m in ms] == [o.key for o in ops[:6]]  # identity and duplicate dropped
    assert all(isinstance(m, Measurement) for m in ms)
    assert ms[2].job_id == 42 and ms[0].job_id is None
    assert ms[0].op.spec == ops[0].to_dict()
    assert ms[0].measured_at is not None
    at = datetime.datetime.fromisoformat(ms[0].measured_at.replace("Z", "+00:00"))
    assert at.utcoffset() == datetime.timedelta(0)
    assert [d for d, _, _ in seen] == [1, 2, 3, 4, 5, 6] and {t for _, t, _ in seen} == {6}
    assert ms[0].env["timing"]["converged"] is True
    assert s.run([Skip(c_in=8, h=8, w=8, c_out=8, mode="identity")]) == []


def test_order_is_shuffled_and_seeded():
    ops = specs(12)
    orders = []
    for seed in (1, 1, 2):
        b = SyntheticBackend()
        ProfileSession(b, P, canary_every=0, seed=seed).run(ops)
        orders.append(b.calls)
    assert orders[0] == orders[1] and orders[0] != orders[2]
    assert orders[0] != [o.key for o in ops] and sorted(orders[0]) == sorted(o.key for o in ops)


def test_canary_every_n_ops_without_drift():
    b = SyntheticBackend()
    s = ProfileSession(b, P, canary_every=4, seed=0)
    ms = s.run(specs(8))
    canary = pick_canary(specs(8)).key
    assert s.canary is not None and s.canary.key == canary
    assert b.calls.count(canary) == 1 + 2 + 1  # baseline, two checks, its own measurement
    assert s.remeasured == 0
    assert all(m.env["canary_drift"] == 0.0 for m in ms)
    assert not any(m.env["flags"] for m in ms)


def test_transient_drift_remeasures_the_batch():
    # calls: 0 baseline, 1-4 batch one, 5 canary; 6-9 batch two slowed by 30%, 10 canary, then back to normal
    b = SyntheticBackend(slow={6: 1.3, 11: 1.0})
    s = ProfileSession(b, P, canary_every=4, drift_tol=0.05, seed=0)
    ms = s.run(specs(8))
    assert s.remeasured == 4
    flagged = [m for m in ms if "remeasured_after_drift" in m.env["flags"]]
    assert len(flagged) == 4 and not any("drift_unresolved" in m.env["flags"] for m in ms)
    truth = {o.key: 1 + 0.3 + o.c_out / 1000 for o in specs(8)}
    for m in ms:  # every kept number is the unslowed one
        assert m.stats.median_ms == pytest.approx(truth[m.op.key], rel=1e-6)


def test_persistent_drift_is_flagged_and_rebased():
    b = SyntheticBackend(slow={3: 1.5})
    s = ProfileSession(b, P, canary_every=4, drift_tol=0.05, seed=0)
    ms = s.run(specs(8))
    unresolved = [m for m in ms if "drift_unresolved" in m.env["flags"]]
    assert len(unresolved) == 4
    assert s.canary_baseline_ms == pytest.approx(1.5 * s.canary_history[0]["median_ms"])
    assert not any(m.env["flags"] for m in ms if m not in unresolved)  # later batches vs the new state


def test_clocks_before_and_after_each_batch_from_the_board():
    s = ProfileSession(SyntheticBackend(), P, root=XAVIER, canary_every=3)
    ms = s.run(specs(6))
    env = ms[0].env
    assert env["clocks_before"]["gpu"]["cur_hz"] == 318750000
    assert env["clocks_after"]["temps_c"]["GPU-therm"] == 39.5
    assert "clock_warnings" in env["flags"]
    assert sorted(m.env["order"] for m in ms) == list(range(6))
    again = Measurement.model_validate_json(ms[0].model_dump_json())  # env survives the wire
    assert again.env["clocks_after"]["nvpmodel"] == "MAXN"


def test_real_pytorch_cpu_session():
    import torch

    n = torch.get_num_threads()
    try:
        b = get_backend("pytorch-cpu", threads=1)
        p = TimingProtocol(ci=0.05, max_time_s=0.1, min_samples=6, max_warmup_s=0.05)
        ms = ProfileSession(b, p, canary_every=2).run(specs(3))
    finally:
        torch.set_num_threads(n)
    assert len(ms) == 3 and all(m.stats.median_ms > 0 for m in ms)
    assert ms[0].env["backend"] == "pytorch-cpu"
