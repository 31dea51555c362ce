"""LUT truth: time whole networks end to end and compare with the LUT's sum of their ops.

The networks are timed with the same backend and protocol as the ops. On a noisy machine
the comparison is only fair if ops and networks see the same conditions, so networks are
timed in several short rounds in a shuffled order and combined across rounds (by default the
mean of the faster half of the round medians: bursts of slowdown on a shared machine cover
whole rounds and only add). A network whose kept rounds still disagree (a disturbance that
covered several of its rounds) is timed in extra rounds, as the agent does for ops
(``profiler_agent.rounds.RoundPlan``), and its spread travels with the result. With a backend's
speed reference on (``--speed-ref``), each sample is also divided by the machine's slowdown
measured around it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from lutcore import lutdoc
from lutcore.calibration import Calibration, Validation, fit_split, summarize
from lutcore.errors import LutError
from lutcore.spaces import AnyArch, get_arch, get_space, published_names
from profiler_agent.backends.base import Backend
from profiler_agent.rounds import NETWORK_MAX_EXTRA, NETWORK_SPREAD_TOL, RoundPlan, combine, spread
from profiler_agent.timing import TimingProtocol
from profiler_agent.timing.sensitivity import session_fit

log = logging.getLogger("profiler_agent")


class LutMissing(LutError):
    """The LUT lacks ops an architecture needs; the message says which and how to fill them."""


class LutValues:
    """Per-key latency (ms) of one target, from an export document, a server or a dict."""

    def __init__(self, values: Dict[str, float], target: str = "", lut_version: Optional[int] = None) -> None:
        self.values = values
        self.target = target
        self.lut_version = lut_version

    @classmethod
    def from_file(cls, path: Union[str, Path], target: Optional[str] = None, metric: str = "median_ms") -> LutValues:
        """One target's values from an export document, read and aggregated as every reader does
        (``lutcore.lutdoc``); the document is checked against the schema first."""
        doc = lutdoc.load(path)
        try:
            t = doc.target(target)
        except lutdoc.DocumentError as e:
            raise LutError(f"{path}: {e}; pass --target") from None
        return cls(t.values(metric), t.tid, t.lut_version)

    @classmethod
    def from_server(cls, api: Any, target: str, space: Any, names: Sequence[str]) -> LutValues:
        """The entries these architectures need, in one lookup; absent ones stay absent."""
        keys = sorted({s.key for n in names for _, s in get_arch(n, space.resolution).all_ops()})
        out = api.lookup(target, keys)
        values = {k: float(v["value_ms"]) for k, v in out.get("values", {}).items()}
        return cls(values, target, out.get("lut_version"))

    def prediction(self, arch: AnyArch) -> float:
        """Sum over the deployed ops; identities cost exactly zero and are not in ``all_ops``."""
        missing = [s.key for _, s in arch.all_ops() if s.key not in self.values]
        if missing:
            raise LutMissing(
                f"{arch.name}: the LUT for {self.target or 'this target'} lacks {len(missing)} op(s), e.g. "
                f"{missing[0]}; register the space (POST /spaces or search_client's missing='wait') and run "
                f"an agent, or profile offline: profiler-agent profile --space {arch.space.name} "
                f"--resolution {arch.space.resolution_str} -o run.jsonl"
            )
        return sum(self.values[s.key] for _, s in arch.all_ops())


def validate_interleaved(
    space: str,
    resolution: Optional[str],
    names: Sequence[str],
    backend: Backend,
    session: Any,
    net_protocol: TimingProtocol,
    rounds: int = 3,
    seed: int = 0,
    target: str = "",
    progress: Optional[Callable[[int, int, str], None]] = None,
    estimator: str = "fast-half",
    spread_tol: float = NETWORK_SPREAD_TOL,
    max_extra: int = NETWORK_MAX_EXTRA,
) -> Tuple[LutValues, List[ArchResult]]:
    """Measure the LUT and the networks in the same rounds (ops, then networks, each round).

    A machine whose speed drifts over minutes (a noisy neighbour, thermal limits) then biases
    ops and networks alike; ``estimator`` combines each op's and each network's round medians
    the same way. Networks whose kept rounds disagree by more than ``spread_tol`` then get up to
    ``max_extra`` extra rounds of their own (``retime_disturbed``).
    """
    plan = RoundPlan(rounds, estimator, spread_tol, max_extra)
    sp = get_space(space, resolution)
    archs = [get_arch(n, sp.resolution) for n in names]
    op_rounds: Dict[str, List[float]] = {}
    net_rounds: Dict[str, List[float]] = {a.name: [] for a in archs}
    specs: Dict[str, Any] = {}
    for a in archs:
        for _, spec in a.all_ops():
            specs.setdefault(spec.key, spec)
    tick = _Ticker(rounds * len(archs), progress)  # extra rounds count on from the rounds' total
    for r in range(rounds):
        for m in session.run(list(specs.values())):
            op_rounds.setdefault(m.op.key, []).append(m.stats.median_ms)
        order = list(archs)
        random.Random(seed + r).shuffle(order)  # each round its own order, as time_networks(seed + r) draws it
        _time_pass(order, backend, net_protocol, net_rounds, tick)
    retime_disturbed(archs, net_rounds, plan, backend, net_protocol, seed + rounds, tick)
    lut = LutValues({k: combine(v, estimator) for k, v in op_rounds.items()}, target)
    return lut, _results(sp, archs, {a.name: lut.prediction(a) for a in archs}, net_rounds, plan)


@dataclasses.dataclass
class ArchResult:
    arch: str
    space: str
    resolution: str
    predicted_ms: float
    measured_ms: float
    n_ops: int
    rounds: List[float]
    kind: str  # "published" or "random" or "named"
    in_context: Optional[Dict[str, float]] = None  # op key -> ms inside this network, where the backend attributes
    env: Optional[Dict[str, Any]] = None  # the backend's provenance of the timing (clocks after it, graphs, ...)
    spread: Optional[float] = None  # relative range of the kept rounds (profiler_agent.rounds.spread)
    extra_rounds: int = 0  # rounds added because the kept ones disagreed

    @property
    def error(self) -> float:
        return (self.predicted_ms - self.measured_ms) / self.measured_ms

    def validation(self) -> Validation:
        return Validation(self.arch, self.predicted_ms, self.measured_ms, self.n_ops)

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["error"] = self.error
        return d


def _kind(name: str) -> str:
    if ":random:" in name:
        return "random"
    return "published" if name in published_names() else "named"


def in_context_values(env: Dict[str, Any]) -> Optional[Dict[str, float]]:
    """Op key -> ms inside the network from a backend's attribution (TensorRT's per-layer profile)."""
    got = env.get("in_context")
    if not got or not got.get("blocks"):
        return None
    out: Dict[str, float] = {}
    for b in got["blocks"]:
        out[b["op"]] = out.get(b["op"], 0.0) + float(b["ms"])
    return {k: v for k, v in out.items() if v > 0} or None


def time_networks(
    archs: Sequence[AnyArch],
    backend: Backend,
    protocol: TimingProtocol,
    rounds: int = 3,
    seed: int = 0,
    progress: Optional[Callable[[int, int, str], None]] = None,
    contexts: Optional[Dict[str, Dict[str, float]]] = None,
    envs: Optional[Dict[str, Dict[str, Any]]] = None,
    plan: Optional[RoundPlan] = None,
    slowdowns: Optional[Dict[str, List[Optional[float]]]] = None,
) -> Dict[str, List[float]]:
    """Median ms per round for every architecture; rounds shuffle the order to spread drift.
    With a ``plan``, networks whose kept rounds disagree then get extra rounds (``retime_disturbed``).
    ``contexts`` collects each network's in-context op times where the backend attributes them,
    ``envs`` the backend's provenance of its last timing (clocks read right after it), ``slowdowns``
    each round's speed-reference slowdown (None without a reference), beside ``times``."""
    rng = random.Random(seed)
    out: Dict[str, List[float]] = {a.name: [] for a in archs}
    tick = _Ticker(len(archs) * rounds, progress)
    for _ in range(rounds):
        order = list(archs)
        rng.shuffle(order)
        _time_pass(order, backend, protocol, out, tick, contexts, envs, slowdowns)
    if plan is not None:
        retime_disturbed(archs, out, plan, backend, protocol, seed + rounds, tick, contexts, envs, slowdowns)
    return out


class _Ticker:
    """Progress over passes whose total grows when extra rounds are added."""

    def __init__(self, total: int, progress: Optional[Callable[[int, int, str], None]]) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, name: str) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total, name)


def _time_pass(
    order: Sequence[AnyArch],
    backend: Backend,
    protocol: TimingProtocol,
    out: Dict[str, List[float]],
    tick: _Ticker,
    contexts: Optional[Dict[str, Dict[str, float]]] = None,
    envs: Optional[Dict[str, Dict[str, Any]]] = None,
    slowdowns: Optional[Dict[str, List[Optional[float]]]] = None,
) -> None:
    for a in order:
        res = backend.time_network(a, protocol)
        out[a.name].append(res.stats.median_ms)
        if slowdowns is not None:
            slowdowns.setdefault(a.name, []).append(res.slowdown)
        ctx = in_context_values(res.env)
        if contexts is not None and ctx:
            contexts[a.name] = ctx
        if envs is not None and res.env:
            envs[a.name] = {k: v for k, v in res.env.items() if k != "in_context"}
        tick(a.name)


def retime_disturbed(
    archs: Sequence[AnyArch],
    times: Dict[str, List[float]],
    plan: RoundPlan,
    backend: Backend,
    protocol: TimingProtocol,
    seed: int = 0,
    tick: Optional[_Ticker] = None,
    contexts: Optional[Dict[str, Dict[str, float]]] = None,
    envs: Optional[Dict[str, Dict[str, Any]]] = None,
    slowdowns: Optional[Dict[str, List[Optional[float]]]] = None,
) -> Dict[str, int]:
    """Extra shuffled passes over the networks whose kept rounds disagree (``plan.needs_more``, the
    agent's test for ops), at most ``plan.max_extra`` each; appends to ``times``, returns the extras.

    A network timed while the machine was disturbed for several of its rounds keeps a slow round among
    the faster half: one more round replaces it, where the combined figure alone would carry it."""
    rng = random.Random(seed)
    tick = tick or _Ticker(0, None)
    extra = {a.name: 0 for a in archs}
    while True:
        todo = [a for a in archs if plan.needs_more(times[a.name], extra[a.name])]
        if not todo:
            return extra
        rng.shuffle(todo)
        tick.total += len(todo)
        _time_pass(todo, backend, protocol, times, tick, contexts, envs, slowdowns)
        for a in todo:
            extra[a.name] += 1


def validate(
    space: str,
    resolution: Optional[str],
    names: Iterable[str],
    backend: Backend,
    protocol: TimingProtocol,
    lut: LutValues,
    rounds: int = 3,
    seed: int = 0,
    progress: Optional[Callable[[int, int, str], None]] = None,
    estimator: str = "fast-half",
    spread_tol: float = NETWORK_SPREAD_TOL,
    max_extra: int = NETWORK_MAX_EXTRA,
) -> List[ArchResult]:
    """Time the networks in ``rounds`` shuffled rounds (plus extra rounds for disturbed ones, see
    ``retime_disturbed``) and set them beside ``lut``'s sums. With an auto-sensitivity speed
    reference the rounds are rescaled to the sensitivity they ask for (``timing.sensitivity``),
    kept in each result's ``env["sensitivity"]``. With any speed reference, ``env["speed"]`` keeps
    each round's slowdown and the base they divide by: a process whose whole level is off (one ran
    its networks 30% below the fit process a minute earlier) can then be told from the machine."""
    plan = RoundPlan(rounds, estimator, spread_tol, max_extra)
    sp = get_space(space, resolution)
    archs = [get_arch(n, sp.resolution) for n in names]
    predictions = {a.name: lut.prediction(a) for a in archs}  # fail before timing anything
    contexts: Dict[str, Dict[str, float]] = {}
    envs: Dict[str, Dict[str, Any]] = {}
    slowdowns: Dict[str, List[Optional[float]]] = {}
    times = time_networks(archs, backend, protocol, rounds, seed, progress, contexts, envs, plan, slowdowns)
    fit = session_fit(getattr(backend, "reference", None), [list(zip(times[a.name], slowdowns[a.name])) for a in archs])
    if fit is not None:
        times = {n: [fit.value(v, f) for v, f in zip(ts, slowdowns[n])] for n, ts in times.items()}
        envs = {a.name: dict(envs.get(a.name) or {}, sensitivity=fit.to_env()) for a in archs}
        log.info("speed sensitivity %.2f for %d networks (%s)", fit.s, len(archs), fit.reason)
    speed = _speed_env(getattr(backend, "reference", None), slowdowns)
    envs.update({n: dict(envs.get(n) or {}, speed=s) for n, s in speed.items()})
    return [dataclasses.replace(r, in_context=contexts.get(r.arch), env=envs.get(r.arch) or None)
            for r in _results(sp, archs, predictions, times, plan)]


def _speed_env(reference: Any, slowdowns: Dict[str, List[Optional[float]]]) -> Dict[str, Dict[str, Any]]:
    """Per network, its rounds' slowdowns (in round order) and the reference's base, where a reference ran."""
    base = getattr(reference, "base_per_call_s", None)
    out = {}
    for name, fs in slowdowns.items():
        if any(f is not None for f in fs):
            out[name] = {"slowdowns": [None if f is None else round(f, 4) for f in fs],
                         "base_us": None if base is None else round(1e6 * base, 3)}
    return out


def _results(
    sp: Any, archs: Sequence[AnyArch], predictions: Dict[str, float], rounds: Dict[str, List[float]], plan: RoundPlan
) -> List[ArchResult]:
    est = plan.estimator
    return [
        ArchResult(
            a.name, sp.name, sp.resolution_str, predictions[a.name], combine(rounds[a.name], est),
            len(a.all_ops()), rounds[a.name], _kind(a.name), spread=spread(rounds[a.name], est),
            extra_rounds=len(rounds[a.name]) - plan.rounds,
        )
        for a in archs
    ]


def validation_body(run_id: str, target: str, device_name: str, space: Any, lut_version: Optional[int],
                    results: Sequence[ArchResult], job_id: Optional[int] = None) -> Dict[str, Any]:
    """The ``POST /validations`` document for these results (``job_id``: the validate job they finish).

    The rounds' spread and extra rounds go in ``env["rounds"]``, where an op's measurement keeps its own."""
    body: Dict[str, Any] = {
        "run_id": run_id, "target": target, "device_name": device_name, "space": space.name,
        "resolution": space.resolution_str, "lut_version": lut_version,
        "results": [_result_body(r) for r in results],
    }
    if job_id is not None:
        body["job_id"] = job_id
    return body


def _result_body(r: ArchResult) -> Dict[str, Any]:
    d = r.to_dict()
    out = {k: d[k] for k in ("arch", "kind", "predicted_ms", "measured_ms", "n_ops", "rounds", "in_context", "env")
           if d.get(k) is not None}
    if r.spread is not None:
        out["env"] = dict(out.get("env") or {}, rounds={"spread": round(r.spread, 5), "extra": r.extra_rounds})
    return out


def split_for_calibration(results: Sequence[ArchResult], fit_share: float = 0.5, seed: int = 0):
    """Random architectures split into fit/held-out as the server splits them (``fit_split``);
    published and named ones are always held out."""
    fit_names = set(fit_split([r.arch for r in results if r.kind == "random"], fit_share, seed))
    fit = [r for r in results if r.arch in fit_names]
    held = [r for r in results if r.arch not in fit_names]
    return fit, held


def report(
    results: Sequence[ArchResult],
    calibration: Optional[Calibration] = None,
    heldout: Optional[Sequence[ArchResult]] = None,
) -> Dict[str, Any]:
    """Summary object: raw error over all; with a calibration, its error over all (``calibrated``)
    and, given ``heldout``, over the architectures it was not fitted on (``calibrated_heldout``)."""
    out: Dict[str, Any] = {"summary": True, "raw": summarize([r.error for r in results])}
    if calibration is not None:
        out["calibration"] = calibration.to_dict()
        out["calibrated"] = summarize([calibration.error(r.validation()) for r in results])
        if heldout is not None:
            out["calibrated_heldout"] = summarize([calibration.error(r.validation()) for r in heldout])
    return out
