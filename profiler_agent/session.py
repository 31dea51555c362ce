"""A profiling session: many ops on one backend, shuffled, with canary drift checks (stub)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from lutcore.ops import OpSpec
from lutcore.records import Measurement
from profiler_agent.backends.base import Backend
from profiler_agent.timing import TimingProtocol


class ProfileSession:
    def __init__(
        self,
        backend: Backend,
        protocol: TimingProtocol,
        root: Union[str, Path] = "/",
        canary_every: int = 20,
        drift_tol: float = 0.05,
        seed: int = 0,
        progress: Optional[Callable[[int, int, str], None]] = None,
    ) -> None:
        self.backend = backend
        self.protocol = protocol

    def run(self, specs: Sequence[OpSpec], job_ids: Optional[Dict[str, int]] = None) -> List[Measurement]:
        raise NotImplementedError
