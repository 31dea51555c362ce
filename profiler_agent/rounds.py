"""Rounds: each op's samples spread over several short passes across a whole batch of ops.

On a shared machine the speed wanders for stretches of 0.5 s to several seconds. An op timed
once, in one block, carries whatever state the machine was in at that moment; an op timed in
``rounds`` short passes, each pass visiting the batch in a new shuffled order, sees several
states, and the rounds can be combined by an estimator that keeps the least disturbed ones.
Whole networks are validated the same way (``profiler_agent.validate``), so a LUT sum and a
network time rest on the same estimator. The LUT-truth bench found rounds combined by the
mean of their faster half more accurate than one long block of the same total length.

An op whose chosen rounds still disagree (``spread`` above ``spread_tol``) is timed in extra
rounds, at most ``max_extra`` of them, and keeps its spread in the measurement's ``env``.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Dict, List, Sequence

from profiler_agent.timing import TimingProtocol, TimingResult, outlier_indices, quantile, summarize

ESTIMATORS = ("fast-half", "min", "median")

# Whole networks in validation are held to a tighter agreement than ops, with more extra rounds to get
# there: a LUT sum averages the noise of dozens of ops, a network's time is one number and nothing
# averages it. On a noisy evening the faster half of five network rounds still scattered 2.7% (bootstrap
# over the rounds), all of the 3.0% per-architecture scatter a calibration could not remove
# (docs/agent.md, "Stop 18"); on a quiet one the kept rounds agree within 5% and no round is added.
NETWORK_SPREAD_TOL = 0.05
NETWORK_MAX_EXTRA = 6


def chosen_rounds(values: Sequence[float], estimator: str) -> List[int]:
    """Indices of the rounds an estimator rests on: the faster half, the fastest, or all."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator {estimator!r} must be one of {', '.join(ESTIMATORS)}")
    if not values:
        raise ValueError("no rounds to combine")
    order = sorted(range(len(values)), key=lambda i: values[i])
    if estimator == "min":
        return order[:1]
    if estimator == "fast-half":
        return sorted(order[: (len(values) + 1) // 2])
    return list(range(len(values)))


def combine(values: Sequence[float], estimator: str) -> float:
    """Round medians -> one value. Slowdowns on a shared machine cover whole rounds and only ever
    add time, so the fast rounds are the least disturbed: ``min`` keeps the fastest, ``fast-half``
    averages the faster half (as robust to a lucky round as to a slow one; the default)."""
    picked = [values[i] for i in chosen_rounds(values, estimator)]
    if estimator == "median":
        return statistics.median(picked)
    return sum(picked) / len(picked)


def spread(values: Sequence[float], estimator: str) -> float:
    """Relative range of the rounds the estimator keeps: how far the kept rounds disagree."""
    picked = [values[i] for i in chosen_rounds(values, estimator)]
    return (max(picked) - min(picked)) / combine(values, estimator)


@dataclasses.dataclass
class RoundPlan:
    """How many rounds, how they combine, and when an op earns extra rounds."""

    rounds: int = 5
    estimator: str = "fast-half"
    spread_tol: float = 0.10  # chosen rounds further apart than this (relative) -> an extra round
    max_extra: int = 2

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds={self.rounds} must be at least 1")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r} must be one of {', '.join(ESTIMATORS)}")
        if self.spread_tol <= 0:
            raise ValueError(f"spread_tol={self.spread_tol} must be positive")
        if self.max_extra < 0:
            raise ValueError(f"max_extra={self.max_extra} must be >= 0")

    def round_protocol(self, p: TimingProtocol) -> TimingProtocol:
        """One round's share of the per-op protocol: the budget split evenly, the rest unchanged
        (so the total time per op, and with it the wall time of a LUT, stays what it was)."""
        if self.rounds == 1:
            return p
        budget = p.max_time_s / self.rounds
        return dataclasses.replace(p, max_time_s=budget, max_warmup_s=min(p.max_warmup_s, max(p.warmup_s, budget / 4)))

    def needs_more(self, values: Sequence[float], extra_done: int) -> bool:
        return extra_done < self.max_extra and len(values) > 1 and spread(values, self.estimator) > self.spread_tol


def merge(results: Sequence[TimingResult], estimator: str, outlier_iqr: float = 1.5) -> TimingResult:
    """One TimingResult from an op's rounds: the samples of the rounds the estimator keeps.

    Its median is therefore the median of the least disturbed rounds' samples, with their
    confidence interval; every round's median stays in ``rounds`` for audits.
    """
    if len(results) == 1:
        return results[0]
    medians = [r.stats.median_ms for r in results]
    keep = chosen_rounds(medians, estimator)
    samples = [x for i in keep for x in results[i].samples]
    iters = max(results[i].iters_per_sample for i in keep)
    slow = [r.slowdown for r in results if r.slowdown is not None]
    return TimingResult(
        stats=summarize(samples, iters, outlier_iqr),
        samples=samples,
        outlier_indices=outlier_indices(samples, outlier_iqr),
        iters_per_sample=iters,
        warmup_iters=sum(r.warmup_iters for r in results),
        warmup_s=sum(r.warmup_s for r in results),
        timed_s=sum(r.timed_s for r in results),
        wall_s=sum(r.wall_s for r in results),
        converged=all(results[i].converged for i in keep),
        stop_reason="rounds",
        slowdown=quantile(sorted(slow), 0.5) if slow else None,
        env=results[keep[len(keep) // 2]].env,  # the backend's provenance of a kept round
    )


def rounds_env(results: Sequence[TimingResult], estimator: str, extra: int) -> Dict[str, Any]:
    """What a measurement keeps about its rounds (``env["timing"]["rounds"]``)."""
    medians = [r.stats.median_ms for r in results]
    return {
        "n": len(results),
        "medians_ms": [round(m, 6) for m in medians],
        "kept": chosen_rounds(medians, estimator),
        "estimator": estimator,
        "spread": round(spread(medians, estimator), 5),
        "extra": extra,
    }
