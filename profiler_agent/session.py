"""A profiling session: many ops on one backend, in a shuffled order, with drift checks.

Why each step: ops are timed in a seeded random order so slow drifts (heating, a background
task) spread over the table instead of biasing one stage of the network; a canary op is re-timed
every ``canary_every`` ops and, when it moved by more than ``drift_tol`` from its first timing,
the ops timed since the last good check are timed again and flagged; clocks, temperatures and
the power mode are read before and after each batch (the ops between two canary checks) and
stored in every measurement's ``env``. Identity ops deploy as nothing and are never timed.
The session keeps its canary and counters across ``run`` calls (the daemon calls it per claim).
Errors from the backend propagate: the caller decides what a failed op means.
"""

from __future__ import annotations

import datetime
import logging
import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from lutcore.ops import OpSpec
from lutcore.records import Measurement, OpRecord
from profiler_agent.backends.base import Backend
from profiler_agent.probe import clock_warnings, read_clocks
from profiler_agent.rounds import RoundPlan, merge, rounds_env
from profiler_agent.timing import TimingProtocol, TimingResult
from profiler_agent.timing.sensitivity import SensitivityFit, session_fit

log = logging.getLogger("profiler_agent")


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pick_canary(specs: Sequence[OpSpec]) -> OpSpec:
    """The op of median MAC count: cheap enough to re-time often, big enough not to be launch-bound."""
    ranked = sorted(specs, key=lambda s: (s.macs(), s.key))
    return ranked[len(ranked) // 2]


def timing_env(res: TimingResult) -> Dict[str, Any]:
    """How the number was obtained (kept with it, for audits and the benchmark)."""
    ci = res.ci_rel
    out: Dict[str, Any] = {
        "iters_per_sample": res.iters_per_sample,
        "warmup_iters": res.warmup_iters,
        "warmup_s": round(res.warmup_s, 4),
        "timed_s": round(res.timed_s, 4),
        "wall_s": round(res.wall_s, 4),
        "converged": res.converged,
        "stop_reason": res.stop_reason,
        "ci_rel": None if ci is None else round(ci, 5),
        "outlier_samples": len(res.outlier_indices),
    }
    if res.slowdown is not None:  # timed against a SpeedReference: the machine's slowdown it divided out
        out["slowdown"] = round(res.slowdown, 4)
    if res.env:  # the backend's provenance: clocks right after the samples, enqueue time, graphs, formats
        out["provenance"] = res.env
    return out


class ProfileSession:
    """Times op specs on ``backend`` under ``protocol``; ``run`` returns wire-ready Measurements."""

    def __init__(
        self,
        backend: Backend,
        protocol: TimingProtocol,
        root: Union[str, Path] = "/",
        canary_every: int = 20,
        drift_tol: float = 0.05,
        seed: int = 0,
        progress: Optional[Callable[[int, int, str], None]] = None,
        plan: Optional[RoundPlan] = None,
    ) -> None:
        """``plan``: time each op in several shuffled rounds over the batch (``profiler_agent.rounds``);
        None or one round keeps the single pass with canary re-timing."""
        if canary_every < 0:
            raise ValueError(f"canary_every={canary_every} must be >= 0 (0 turns the canary off)")
        if drift_tol <= 0:
            raise ValueError(f"drift_tol={drift_tol} must be positive")
        self.backend = backend
        self.protocol = protocol
        self.root = root
        self.canary_every = canary_every
        self.drift_tol = drift_tol
        self.rng = random.Random(seed)
        self.progress = progress
        self.plan = plan or RoundPlan(rounds=1)
        self.canary: Optional[OpSpec] = None
        self.canary_baseline_ms: Optional[float] = None
        self.canary_history: List[Dict[str, Any]] = []
        self.results: Dict[str, TimingResult] = {}
        self.remeasured = 0
        self.sensitivity_fit: Optional[SensitivityFit] = None  # the last batch's, with an auto-sensitivity reference
        self._since_check = 0

    # -- helpers ---------------------------------------------------------------------------
    def _time(self, spec: OpSpec, protocol: Optional[TimingProtocol] = None) -> Tuple[TimingResult, str]:
        at = utc_now()
        return self.backend.time_op(spec, protocol or self.protocol), at

    def _check_canary(self) -> Optional[float]:
        """Re-time the canary; its relative drift from the baseline (None before a baseline exists)."""
        assert self.canary is not None
        res, at = self._time(self.canary)
        med = res.stats.median_ms
        if self.canary_baseline_ms is None:
            self.canary_baseline_ms = med
            self.canary_history.append({"at": at, "median_ms": med, "drift": 0.0, "baseline": True})
            return None
        drift = med / self.canary_baseline_ms - 1.0
        self.canary_history.append({"at": at, "median_ms": med, "drift": round(drift, 5)})
        return drift

    def _notify(self, done: int, total: int, key: str) -> None:
        if self.progress is not None:
            self.progress(done, total, key)

    # -- the run ------------------------------------------------------------------------------
    def run(self, specs: Sequence[OpSpec], job_ids: Optional[Dict[str, int]] = None) -> List[Measurement]:
        """Time every distinct non-identity spec once (plus re-timings after drift); results in input order."""
        job_ids = job_ids or {}
        self.results = {}  # this run's raw results only: a daemon's session lives for days
        unique: Dict[str, OpSpec] = {}
        for s in specs:
            if not s.is_identity:
                unique.setdefault(s.key, s)
        if not unique:
            return []
        order = list(unique.values())
        self.rng.shuffle(order)
        if self.plan.rounds > 1:
            return self._run_rounds(order, unique, job_ids)
        position = {s.key: i for i, s in enumerate(order)}
        total = len(order)
        if self.canary is None and self.canary_every:
            self.canary = pick_canary(order)
            self._check_canary()  # the baseline, taken once per session

        timed: Dict[str, Tuple[TimingResult, str]] = {}
        env: Dict[str, Dict[str, Any]] = {}
        batch: List[OpSpec] = []
        clocks_before = read_clocks(self.root)
        done = 0
        for i, spec in enumerate(order):
            timed[spec.key] = self._time(spec)
            batch.append(spec)
            done += 1
            self._since_check += 1
            self._notify(done, total, spec.key)
            last = i == total - 1
            check = bool(self.canary_every) and self._since_check >= self.canary_every
            if not (check or last):
                continue
            flags: List[str] = []
            drift = self._check_canary() if check else None
            self._since_check = 0 if check else self._since_check
            if drift is not None and abs(drift) > self.drift_tol:
                flags.append("remeasured_after_drift")
                for s in batch:  # the ops timed since the last good check
                    timed[s.key] = self._time(s)
                    self.remeasured += 1
                again = self._check_canary()
                if again is not None and abs(again) > self.drift_tol:
                    # The machine changed for good (e.g. throttling): keep the new numbers, flag
                    # them, and compare later batches with the new state.
                    flags.append("drift_unresolved")
                    self.canary_baseline_ms = self.canary_history[-1]["median_ms"]
                drift = again
            clocks_after = read_clocks(self.root)
            warns = clock_warnings(clocks_after)
            for s in batch:
                env[s.key] = {
                    "clocks_before": clocks_before,
                    "clocks_after": clocks_after,
                    "canary": None if self.canary is None else self.canary.key,
                    "canary_drift": None if drift is None else round(drift, 5),
                    "flags": list(flags) + (["clock_warnings"] if warns else []),
                    "order": position[s.key],
                }
            batch = []
            clocks_before = clocks_after

        return self._measurements(unique, timed, env, job_ids)

    def _run_rounds(
        self, order: List[OpSpec], unique: Dict[str, OpSpec], job_ids: Dict[str, int]
    ) -> List[Measurement]:
        """Every op in ``plan.rounds`` shuffled passes, then extra rounds for the ops whose kept
        rounds disagree; no canary (every op already sees the whole batch's span of time)."""
        plan = self.plan
        proto = plan.round_protocol(self.protocol)
        rounds: Dict[str, List[TimingResult]] = {s.key: [] for s in order}
        first_at: Dict[str, str] = {}
        extra = {s.key: 0 for s in order}
        total, done = plan.rounds * len(order), 0
        clocks_before = read_clocks(self.root)
        todo = list(order)
        for r in range(plan.rounds + plan.max_extra):
            if r >= plan.rounds:
                todo = [s for s in order if plan.needs_more([x.stats.median_ms for x in rounds[s.key]], extra[s.key])]
                if not todo:
                    break
                total += len(todo)
            self.rng.shuffle(todo)
            for spec in todo:
                res, at = self._time(spec, proto)
                rounds[spec.key].append(res)
                first_at.setdefault(spec.key, at)
                if r >= plan.rounds:
                    extra[spec.key] += 1
                    self.remeasured += 1
                done += 1
                self._notify(done, total, spec.key)
        clocks_after = read_clocks(self.root)
        flags = ["clock_warnings"] if clock_warnings(clocks_after) else []
        items = [[(x.stats.median_ms, x.slowdown) for x in rs] for rs in rounds.values()]
        fit = session_fit(getattr(self.backend, "reference", None), items)
        if fit is not None:  # every round of the batch under the sensitivity its rounds asked for
            self.sensitivity_fit = fit
            log.info("speed sensitivity %.2f for a batch of %d ops (%s)", fit.s, len(order), fit.reason)
            iqr = self.protocol.outlier_iqr
            rounds = {k: [fit.result(x, iqr) for x in rs] for k, rs in rounds.items()}
        timed: Dict[str, Tuple[TimingResult, str]] = {}
        env: Dict[str, Dict[str, Any]] = {}
        for i, spec in enumerate(order):
            timed[spec.key] = (merge(rounds[spec.key], plan.estimator, self.protocol.outlier_iqr), first_at[spec.key])
            env[spec.key] = {
                "clocks_before": clocks_before,
                "clocks_after": clocks_after,
                "flags": list(flags),
                "order": i,
                "rounds": rounds_env(rounds[spec.key], plan.estimator, extra[spec.key]),
            }
            if fit is not None:
                env[spec.key]["sensitivity"] = fit.to_env()
        return self._measurements(unique, timed, env, job_ids)

    def _measurements(
        self,
        unique: Dict[str, OpSpec],
        timed: Dict[str, Tuple[TimingResult, str]],
        env: Dict[str, Dict[str, Any]],
        job_ids: Dict[str, int],
    ) -> List[Measurement]:
        out: List[Measurement] = []
        for key, spec in unique.items():
            res, at = timed[key]
            self.results[key] = res
            e = dict(env[key])
            e["timing"] = timing_env(res)
            for part in ("rounds", "sensitivity"):  # how the rounds were taken and rescaled
                if part in e:
                    e["timing"][part] = e.pop(part)
            e["backend"] = self.backend.name
            out.append(
                Measurement(
                    op=OpRecord(key=key, spec=spec.to_dict()),
                    stats=res.stats,
                    job_id=job_ids.get(key),
                    measured_at=at,
                    env=e,
                )
            )
        return out
