"""The backend interface: build an op (or a whole network) for one runtime and time it."""

from __future__ import annotations

import abc
import json
import socket
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Union

from lutcore.ops import OpSpec
from lutcore.ops.layers import Conv
from lutcore.records import Target
from profiler_agent.timing import SpeedReference, TimingProtocol, TimingResult
from profiler_agent.timing.sensitivity import AUTO_SENSITIVITY, DEFAULT_SENSITIVITY

if TYPE_CHECKING:
    from profiler_agent.speed_base import SpeedBases

# The speed reference: small enough to stay in L2 (about 140 kB), long enough to time (~7 MMACs).
REFERENCE_OP = Conv(c_in=32, h=28, w=28, c_out=32)


class BackendUnavailable(RuntimeError):
    """The backend cannot run on this machine (missing library, no GPU, ...)."""


class Backend(abc.ABC):
    """One way of running ops. Subclasses set ``name`` and ``precisions``."""

    name: str = ""
    precisions: tuple = ("fp32",)
    reference: Optional[SpeedReference] = None  # set by use_speed_reference()
    # Rounds per op the session should use: CPU speed wanders on shared machines (several short
    # rounds); a GPU backend warms up once per state and times in graphs, one round is enough.
    default_rounds: int = 5
    power_mode: Optional[str] = None  # a Jetson's nvpmodel mode, set by the GPU backends: it enters the target

    def __init__(self, precision: str = "fp32") -> None:
        if precision not in self.precisions:
            supported = ", ".join(self.precisions)
            raise ValueError(f"backend {self.name!r} supports precision {supported}, not {precision!r}")
        self.precision = precision

    # -- what a backend must say about itself ---------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        """None when the backend can run here, else why not (shown by ``available_backends``)."""
        return None

    def settings(self) -> Dict[str, str]:
        """Settings that change the numbers (threads, CUDA graphs, ...), as they go into the target id."""
        return {}

    def target(self, device_class: str, settings: Optional[Dict[str, str]] = None) -> Target:
        """The target these numbers belong to; ``settings`` adds device-side ones (a given power_mode wins)."""
        merged = dict(self.settings())
        if self.power_mode:
            merged["power_mode"] = self.power_mode
        if self.reference is not None:
            merged["speed"] = "ref"
        merged.update(settings or {})
        return Target(device=device_class, backend=self.name, precision=self.precision, batch=1, settings=merged)

    def versions(self) -> Dict[str, str]:
        """Library versions that produced the numbers."""
        return {}

    # -- machine speed -------------------------------------------------------------------------
    def reference_workload(self) -> Callable[[], None]:
        """One forward pass of ``REFERENCE_OP`` on this runtime (CPU backends only)."""
        raise BackendUnavailable(f"backend {self.name!r} has no speed reference (it is for CPU backends)")

    def use_speed_reference(self, seconds: float = 3.0, sensitivity: Union[float, str] = DEFAULT_SENSITIVITY,
                            bases: Optional[SpeedBases] = None) -> SpeedReference:
        """Divide every later sample by the machine's slowdown around it (see ``SpeedReference``).

        For shared machines whose speed wanders; a dedicated board does not need it. The target
        records ``speed=ref`` so corrected and uncorrected numbers never mix in one LUT. With
        ``bases``, the base this machine first calibrated for this backend and settings replaces
        the process's own (``profiler_agent.speed_base``): times of different processes compare.
        ``sensitivity="auto"``: corrected with 0.5 while timing, then refitted per session from its
        rounds (``profiler_agent.timing.sensitivity``).
        """
        auto = sensitivity == AUTO_SENSITIVITY
        ref = SpeedReference(self.reference_workload(), sensitivity=DEFAULT_SENSITIVITY if auto else float(sensitivity),
                             name=REFERENCE_OP.key, auto_sensitivity=auto)
        kept = bases.get(self.speed_base_key()) if bases is not None else None
        if kept is not None:  # only the block is sized here: the seconds of calibration would be discarded
            ref.size_block()
            ref.adopt_base(kept)
        else:
            ref.calibrate(seconds)
            own = ref.base_per_call_s
            if bases is not None and own:  # two first processes at once: the one kept first wins
                ref.adopt_base(bases.keep(self.speed_base_key(), own))
        self.reference = ref
        return ref

    def speed_base_key(self) -> str:
        """What a kept speed base belongs to: host, backend, settings, reference op, library versions."""
        parts = [socket.gethostname(), self.name, json.dumps(self.settings(), sort_keys=True), REFERENCE_OP.key,
                 json.dumps(self.versions(), sort_keys=True)]
        return "|".join(parts)

    # -- timing ------------------------------------------------------------------------------
    @abc.abstractmethod
    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        """Time one op at its spec's shape (batch as in the spec, normally 1)."""

    @abc.abstractmethod
    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        """Time a whole ``lutcore.spaces.Arch`` as deployed (for checking LUT sums)."""

    def close(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Release device memory, caches, sessions."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_timeable(spec: OpSpec) -> None:
    """Identity ops deploy as nothing and are never timed."""
    if spec.is_identity:
        raise ValueError(f"op {spec.key} is an identity (it deploys as nothing) and is not timed")
