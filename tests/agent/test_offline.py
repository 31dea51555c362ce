"""Offline profiling with no server: the run file, resuming, and reading torn files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lutcore.records import Measurement
from profiler_agent import cli
from profiler_agent.offline import RunFileError, read_run
from tests.agent.agent_helpers import FAST, TINY_SPACE, tiny_keys


def space_file(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY_SPACE))
    return p


def profile_argv(space: Path, out: Path, *extra: str) -> list:
    return ["profile", "--space", str(space), "-o", str(out), "--device", "cpu-test", "--name", "box-1",
            "--threads", "1", "-q", *FAST, *extra]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("offline")
    out = d / "run.jsonl"
    assert cli.main(profile_argv(space_file(d), out)) == cli.EXIT_OK
    return out


def test_run_file_has_a_header_then_one_measurement_per_unique_op(run_file: Path) -> None:
    lines = run_file.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["schema"] == "profiler-agent-run/1"
    assert header["target_id"] == "cpu-test/pytorch-cpu/fp32@threads=1"
    assert (header["space"], header["resolution"], header["ops"]) == ("agent-tiny", "32x32", len(tiny_keys()))
    assert header["device_name"] == "box-1" and len(header["run_id"]) == 32
    assert "clocks" not in header["fingerprint"] and "probed_at" not in header["fingerprint"]
    assert "clocks" in header["probe"]
    ms = [Measurement.model_validate_json(line) for line in lines[1:]]
    assert sorted(m.op.key for m in ms) == tiny_keys()
    assert all(m.stats.median_ms > 0 and m.measured_at for m in ms)
    assert all(m.job_id is None for m in ms)


def test_existing_output_needs_resume(run_file: Path, tmp_path: Path, capsys) -> None:
    before = run_file.read_text()
    assert cli.main(profile_argv(space_file(tmp_path), run_file)) == cli.EXIT_ERROR
    assert "pass --resume" in capsys.readouterr().err
    # Resuming a complete file times nothing and keeps the run id.
    assert cli.main(profile_argv(space_file(tmp_path), run_file, "--resume")) == cli.EXIT_OK
    assert run_file.read_text() == before


def test_resume_finishes_an_interrupted_run_under_the_same_run_id(run_file: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial.jsonl"
    lines = run_file.read_text().splitlines()
    partial.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])  # 2 results and a torn third line
    header, items = read_run(partial)
    assert len(items) == 2
    assert cli.main(profile_argv(space_file(tmp_path), partial, "--resume")) == cli.EXIT_OK
    header2, items2 = read_run(partial)
    assert header2["run_id"] == header["run_id"]
    assert sorted(i["op"]["key"] for i in items2) == tiny_keys()
    kept = {i["op"]["key"]: i["stats"] for i in items}
    assert all(i["stats"] == kept[i["op"]["key"]] for i in items2 if i["op"]["key"] in kept)


def test_limit_and_json_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "two.jsonl"
    argv = profile_argv(space_file(tmp_path), out, "--limit", "2", "--json")
    argv.remove("-q")
    assert cli.main(argv) == cli.EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["ops"] == 2 and summary["target"] == "cpu-test/pytorch-cpu/fp32@threads=1"
    assert len(read_run(out)[1]) == 2


def test_built_in_space_by_name(tmp_path: Path) -> None:
    out = tmp_path / "sq.jsonl"
    argv = ["profile", "--space", "squeezenas-small", "--resolution", "64x128", "-o", str(out), "--limit", "3",
            "--threads", "1", "-q", *FAST]
    assert cli.main(argv) == cli.EXIT_OK
    header, items = read_run(out)
    assert header["space"] == "squeezenas-small" and header["resolution"] == "64x128"
    assert header["device_class"].startswith("cpu-")  # guessed from the machine when --device is absent
    assert len(items) == 3


def test_read_run_rejects_files_that_are_not_runs(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    with pytest.raises(RunFileError, match="no such run file"):
        read_run(p)
    p.write_text('{"hello": 1}\n')
    with pytest.raises(RunFileError, match="not a profiler-agent run file"):
        read_run(p)
    p.write_text(json.dumps({"schema": "profiler-agent-run/1", "run_id": "r" * 10, "target": {},
                             "device_name": "d"}) + "\nnot json\n{}\n")
    with pytest.raises(RunFileError, match=":2: not JSON"):
        read_run(p)


def test_unknown_space_is_a_clear_error(tmp_path: Path, capsys) -> None:
    argv = ["profile", "--space", "no-such-space", "-o", str(tmp_path / "o.jsonl"), "-q"]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "unknown space 'no-such-space'" in capsys.readouterr().err


def test_resume_with_another_space_or_resolution_is_refused_and_writes_nothing(run_file: Path, tmp_path: Path,
                                                                               capsys) -> None:
    before = run_file.read_text()
    other = dict(TINY_SPACE, name="agent-tiny-other")
    other_file = tmp_path / "other.json"
    other_file.write_text(json.dumps(other))
    assert cli.main(profile_argv(other_file, run_file, "--resume")) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "same space" in err and "agent-tiny-other" in err and "agent-tiny" in err and "another -o" in err
    assert cli.main(profile_argv(space_file(tmp_path), run_file, "--resume", "--resolution", "64x64")) == cli.EXIT_ERROR
    assert "same resolution" in capsys.readouterr().err
    assert run_file.read_text() == before
