"""``profiler-agent validate``: whole networks against LUT sums, offline and from a LUT file."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Dict

import pytest

from lutcore.spaces import get_chain_arch, parse_arch_list
from profiler_agent.validate import LutMissing, LutValues

FAST = ["--threads", "1", "--max-time-per-op", "0.05", "--max-time-per-net", "0.1", "--rounds", "2",
        "--ci", "0.05", "--min-samples", "3", "--max-warmup", "0.02"]


def agent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler_agent", *args], capture_output=True, text=True,
                          timeout=300)


def test_parse_arch_list():
    assert parse_arch_list("published,random:2", "squeezenas-large", seed=5) == [
        "squeezenas-mac-large", "squeezenas-lat-large", "squeezenas-large:random:5", "squeezenas-large:random:6"]
    with pytest.raises(ValueError, match="names no architecture"):
        parse_arch_list("published", "tfnas")
    with pytest.raises(ValueError, match="integer"):
        parse_arch_list("random:x", "tfnas")


def test_prediction_is_the_sum_of_deployed_ops_and_missing_is_explicit():
    arch = get_chain_arch("squeezenas-lat-small", "64x128")
    ops = arch.all_ops()
    lut = LutValues({s.key: len(s.key) / 10 for _, s in ops}, "t")
    assert lut.prediction(arch) == pytest.approx(sum(len(s.key) / 10 for _, s in ops))  # repeated ops count twice
    assert len(ops) < arch.space.num_layers + len(arch.space.fixed)  # identity skips cost nothing
    del lut.values[ops[3][1].key]
    with pytest.raises(LutMissing, match="lacks 1 op.*profiler-agent profile"):
        lut.prediction(arch)


@pytest.mark.slow
def test_validate_offline_json_lines(tmp_path):
    r = agent("validate", "--space", "squeezenas-small", "-r", "64x128", "--archs", "published,random:4",
              "--measure-lut", "--calibrate", "--speed-ref", "--json", "-q", *FAST)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    archs, summary = lines[:-1], lines[-1]
    assert [a["arch"] for a in archs][:2] == ["squeezenas-mac-small", "squeezenas-lat-small"]
    for a in archs:
        assert a["predicted_ms"] > 0 and a["measured_ms"] > 0 and len(a["rounds"]) == 2
        assert a["error"] == pytest.approx((a["predicted_ms"] - a["measured_ms"]) / a["measured_ms"])
    assert summary["summary"] is True and summary["raw"]["n"] == 6
    assert summary["target"].endswith("@speed=ref,threads=1")  # speed-corrected numbers are their own target
    assert {"a", "b"} <= set(summary["calibration"]) and summary["calibrated"]["n"] == 6
    assert summary["calibration"]["model"] in summary["calibration"]["cv_error"]
    assert 0 < summary["calibrated_heldout"]["n"] < 6  # published and unfitted random archs only


def test_validate_with_a_lut_file_that_lacks_ops(tmp_path):
    doc = {"schema": "nas-lut/1", "targets": [{"id": "cpu/pytorch-cpu/fp32@threads=1", "lut_version": 1,
                                                "entries": []}]}
    f = tmp_path / "lut.json"
    f.write_text(json.dumps(doc))
    r = agent("validate", "--space", "squeezenas-small", "-r", "64x128", "--archs", "published", "--lut", str(f),
              "--target", "cpu/pytorch-cpu/fp32@threads=1", *FAST)
    assert r.returncode == 1
    assert "lacks" in r.stderr and "profiler-agent profile" in r.stderr and "Traceback" not in r.stderr
    r = agent("validate", "--space", "squeezenas-small", "-r", "64x128", "--lut", str(f), "--target", "nope/x/y")
    assert r.returncode != 0 and "no target 'nope/x/y'" in r.stderr


def test_in_context_times_a_backend_attributes_travel_with_the_results():
    import dataclasses

    from lutcore.ops import OpSpec
    from lutcore.spaces import get_arch, get_space
    from profiler_agent.backends.base import Backend
    from profiler_agent.timing import TimingProtocol, TimingResult, summarize
    from profiler_agent.validate import LutValues, in_context_values, validate, validation_body

    class Attributing(Backend):
        """Whole networks only; every block reported at 0.1 ms by a TensorRT-like layer profile."""

        name = "tensorrt"

        def time_op(self, spec: OpSpec, protocol: TimingProtocol) -> TimingResult:
            raise NotImplementedError

        def time_network(self, arch: Any, protocol: TimingProtocol) -> TimingResult:
            blocks = [{"scope": f"/n.{i}", "op": s.key, "ms": 0.1} for i, (_, s) in enumerate(arch.all_ops())]
            res = TimingResult(stats=summarize([5.0, 5.1, 4.9]), samples=[5.0, 5.1, 4.9], outlier_indices=[],
                               iters_per_sample=1, warmup_iters=1, warmup_s=0.0, timed_s=0.0, wall_s=0.0,
                               converged=True, stop_reason="ci")
            return dataclasses.replace(res, env={"in_context": {"blocks": blocks, "unattributed_ms": 0.2},
                                                 "clocks_after": {"sm_mhz": 1980}})

    assert in_context_values({}) is None and in_context_values({"in_context": {"blocks": []}}) is None
    sp = get_space("squeezenas-small", "64x128")
    name = "squeezenas-small:random:1"
    arch = get_arch(name, "64x128")
    lut = LutValues({s.key: 0.2 for _, s in arch.all_ops()})
    [r] = validate(sp.name, "64x128", [name], Attributing(), TimingProtocol(), lut, rounds=2)
    counts: Dict[str, int] = {}
    for _, s in arch.all_ops():
        counts[s.key] = counts.get(s.key, 0) + 1
    assert r.in_context == pytest.approx({k: 0.1 * n for k, n in counts.items()})
    [sent] = validation_body("run-00000001", "t", "box", sp, 1, [r])["results"]
    assert sent["in_context"] == r.in_context and sent["predicted_ms"] == pytest.approx(0.2 * len(arch.all_ops()))
    # provenance without the attribution, and the rounds' spread (both rounds alike here)
    assert sent["env"] == {"clocks_after": {"sm_mhz": 1980}, "rounds": {"spread": 0.0, "extra": 0}}
