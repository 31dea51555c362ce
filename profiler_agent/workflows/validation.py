"""Validating a LUT against whole networks: the one sequence that ``profiler-agent validate`` and the
daemon's validate jobs both follow (plan, time against the LUT, post, refit the server's calibration)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from lutcore.calibration import Calibration
from profiler_agent.api import LutApi
from profiler_agent.backends.base import Backend
from profiler_agent.rounds import NETWORK_MAX_EXTRA, NETWORK_SPREAD_TOL, RoundPlan
from profiler_agent.timing import TimingProtocol
from profiler_agent.validate import (
    ArchResult,
    LutValues,
    split_for_calibration,
    validate,
    validate_interleaved,
    validation_body,
)

Progress = Optional[Callable[[int, int, str], None]]


@dataclasses.dataclass(frozen=True)
class ValidationPlan:
    """Which networks of which space, timed how."""

    space: Any  # a lutcore Space at its resolution
    names: List[str]
    rounds: int = 5
    seed: int = 0
    max_time_per_net: float = 0.5
    estimator: str = "fast-half"
    spread_tol: float = NETWORK_SPREAD_TOL  # a network whose kept rounds differ by more gets an extra round
    max_extra: int = NETWORK_MAX_EXTRA  # ... at most this many

    @classmethod
    def make(cls, space: Any, archs: str, seed: int = 0, rounds: int = 5, max_time_per_net: float = 0.5,
             estimator: str = "fast-half", spread_tol: float = NETWORK_SPREAD_TOL,
             max_extra: int = NETWORK_MAX_EXTRA) -> ValidationPlan:
        """``archs`` as the CLI and the job payload give it (``published,random:20``); ValueError if bad."""
        from lutcore.spaces import parse_arch_list

        RoundPlan(rounds, estimator, spread_tol, max_extra)  # checks the round knobs
        if max_time_per_net <= 0:
            raise ValueError(f"max_time_per_net={max_time_per_net} must be positive")
        return cls(space, list(parse_arch_list(archs, space.name, seed)), rounds, seed, max_time_per_net, estimator,
                   spread_tol, max_extra)

    def net_protocol(self, protocol: TimingProtocol) -> TimingProtocol:
        return dataclasses.replace(protocol, max_time_s=self.max_time_per_net)


def time_against(plan: ValidationPlan, backend: Backend, protocol: TimingProtocol, lut: LutValues,
                 progress: Progress = None) -> List[ArchResult]:
    """Time the plan's networks and set them beside ``lut``'s sums (fails before timing if ops are missing)."""
    return validate(plan.space.name, plan.space.resolution_str, plan.names, backend, plan.net_protocol(protocol), lut,
                    rounds=plan.rounds, seed=plan.seed, progress=progress, estimator=plan.estimator,
                    spread_tol=plan.spread_tol, max_extra=plan.max_extra)


def time_against_server(api: Any, target_id: str, plan: ValidationPlan, backend: Backend, protocol: TimingProtocol,
                        progress: Progress = None) -> Tuple[LutValues, List[ArchResult]]:
    lut = LutValues.from_server(api, target_id, plan.space, plan.names)
    return lut, time_against(plan, backend, protocol, lut, progress)


def time_with_measured_lut(plan: ValidationPlan, backend: Backend, session: Any, protocol: TimingProtocol,
                           target_id: str, progress: Progress = None) -> Tuple[LutValues, List[ArchResult]]:
    """Ops and networks timed here in the same rounds, so drift hits both alike (no server, no file)."""
    return validate_interleaved(plan.space.name, plan.space.resolution_str, plan.names, backend, session,
                                plan.net_protocol(protocol), rounds=plan.rounds, seed=plan.seed, target=target_id,
                                progress=progress, estimator=plan.estimator, spread_tol=plan.spread_tol,
                                max_extra=plan.max_extra)


def fit_calibration(results: Sequence[ArchResult], fit_share: float, seed: int
                    ) -> Tuple[Optional[Calibration], List[ArchResult], str]:
    """A calibration fitted here on the fit share of the random archs: (it or None, the held-out ones, why not)."""
    fit, held = split_for_calibration(results, fit_share=fit_share, seed=seed)
    try:
        return Calibration.select([r.validation() for r in fit]), list(held), ""
    except ValueError as e:
        return None, list(held), str(e)


def refit_server_calibration(api: LutApi, target_id: str, space: Any, seed: int, fit_share: float) -> Any:
    """Ask the server to refit its calibration for (target, space) from the validations it holds."""
    return api.fit_calibration(target_id, space.name, space.resolution_str, seed=seed, fit_share=fit_share)


def publish(api: LutApi, run_id: str, target_id: str, device_name: str, plan: ValidationPlan, lut: LutValues,
            results: Sequence[ArchResult], job_id: Optional[int] = None, calibrate: bool = False,
            fit_share: float = 0.5) -> Dict[str, Any]:
    """Post the results (naming the job they finish, if any); with ``calibrate`` refit the server's calibration.

    Returns ``{"stored": ...}`` and, when refitted, ``{"server_calibration": ...}`` as the server answered.
    """
    body = validation_body(run_id, target_id, device_name, plan.space, lut.lut_version, results, job_id)
    out: Dict[str, Any] = {"stored": api.post_validations(body)}
    if calibrate:
        out["server_calibration"] = refit_server_calibration(api, target_id, plan.space, plan.seed, fit_share)
    return out


def describe_server_calibration(answer: Any) -> str:
    """One readable line for the server's answer to a refit (never the raw dict)."""
    cal = answer.get("calibration") if isinstance(answer, dict) else None
    if not cal:
        return "none"
    text = Calibration.from_dict(cal).describe()
    held = answer.get("heldout_summary") or {}
    if held.get("n"):
        text += f"; held-out median |error| {100 * held['median_abs_error']:.2f}% (n={held['n']})"
    return text
