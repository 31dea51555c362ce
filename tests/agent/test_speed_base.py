"""The kept speed base: one base per machine and backend, so that every process divides by the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from lutcore.ops import OpSpec
from profiler_agent.backends.base import Backend
from profiler_agent.speed_base import SpeedBases, default_path
from profiler_agent.timing import SpeedReference, TimingProtocol, TimingResult


class _CpuLike(Backend):
    """A backend with a real reference workload (a busy loop) and nothing else."""

    name = "busy-loop"

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        self.threads = threads

    def settings(self) -> dict:
        return {"threads": str(self.threads)}

    def reference_workload(self) -> Callable[[], None]:
        def busy() -> None:
            sum(range(3000))

        return busy

    def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
        raise NotImplementedError

    def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
        raise NotImplementedError


def test_the_first_base_kept_for_a_key_stays(tmp_path: Path) -> None:
    bases = SpeedBases(tmp_path / "b.json")
    assert bases.get("k") is None
    assert bases.keep("k", 2e-4) == 2e-4
    assert bases.keep("k", 3e-4) == 2e-4  # a later, slower start does not move it
    assert bases.keep("other", 5e-4) == 5e-4
    assert SpeedBases(tmp_path / "b.json").get("k") == 2e-4  # on disk, for the next process
    with pytest.raises(ValueError):
        bases.keep("z", 0.0)


def test_a_damaged_file_means_calibrating_anew(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("{not json")
    bases = SpeedBases(path)
    assert bases.get("k") is None
    assert bases.keep("k", 1e-4) == 1e-4 and json.loads(path.read_text())["k"]["per_call_s"] == 1e-4


def test_default_path_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUT_SPEED_BASE", str(tmp_path / "x.json"))
    assert default_path() == tmp_path / "x.json"
    monkeypatch.delenv("LUT_SPEED_BASE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "profiler-agent" / "speed-base.json"


def test_adopting_a_base_rescales_the_block_it_times() -> None:
    ref = SpeedReference(lambda: None)
    with pytest.raises(ValueError):
        ref.adopt_base(1e-4)  # before size_block: no block size yet
    ref.iters, ref.base_s = 4, 8e-4
    assert ref.base_per_call_s == pytest.approx(2e-4)
    ref.adopt_base(3e-4)
    assert ref.base_s == pytest.approx(12e-4) and ref.factor(12e-4, 24e-4) == pytest.approx(1.5)


def test_a_second_process_divides_by_the_base_the_first_kept(tmp_path: Path) -> None:
    bases = SpeedBases(tmp_path / "b.json")
    first = _CpuLike().use_speed_reference(seconds=0.02, bases=bases)
    key = _CpuLike().speed_base_key()
    assert bases.get(key) == pytest.approx(first.base_per_call_s)
    # A later process whose own calibration would differ (here: the kept base is made 3x slower)
    data = json.loads(bases.path.read_text())
    data[key]["per_call_s"] *= 3
    bases.path.write_text(json.dumps(data))
    second = _CpuLike().use_speed_reference(seconds=0.02, bases=bases)
    assert first.base_per_call_s is not None
    assert second.base_per_call_s == pytest.approx(3 * first.base_per_call_s)
    own = _CpuLike().use_speed_reference(seconds=0.02)  # no store: its own, as before
    assert own.base_per_call_s != pytest.approx(second.base_per_call_s)
    # another thread count is another key: it calibrates and keeps its own
    assert _CpuLike(threads=2).speed_base_key() != key


def test_the_cli_keeps_the_base_unless_told_to_calibrate_fresh(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from profiler_agent.cli import components
    from profiler_agent.cli.parser import build_parser

    monkeypatch.setenv("LUT_SPEED_BASE", str(tmp_path / "kept.json"))
    monkeypatch.setattr(SpeedReference, "calibrate", _instant_calibration)
    argv = ["profile", "--space", "squeezenas-small", "-o", str(tmp_path / "o.jsonl"), "--backend", "pytorch-cpu",
            "--threads", "1", "--speed-ref"]
    b = components.backend(build_parser().parse_args(argv))
    kept = SpeedBases().get(b.speed_base_key())
    assert kept is not None and b.reference.base_per_call_s == pytest.approx(kept)
    data = json.loads((tmp_path / "kept.json").read_text())
    data[b.speed_base_key()]["per_call_s"] = 7.0
    (tmp_path / "kept.json").write_text(json.dumps(data))
    assert components.backend(build_parser().parse_args(argv)).reference.base_per_call_s == pytest.approx(7.0)
    fresh = components.backend(build_parser().parse_args(argv + ["--speed-ref-fresh"]))
    assert fresh.reference.base_per_call_s == pytest.approx(kept)  # its own calibration, not the kept 7 s


def _instant_calibration(self: SpeedReference, seconds: float = 3.0, window: int = 25) -> float:
    """The same base in every process of the test, without seconds of timing."""
    self.iters, self.base_s = 2, 4e-4
    return self.base_s
