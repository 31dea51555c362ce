"""``profiler-agent`` without a server: argument handling, probe, backends, progress display."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from profiler_agent import cli
from profiler_agent.cli.components import target
from profiler_agent.cli.parser import normalize_argv
from profiler_agent.progress import Progress, fmt_duration


def test_no_command_means_the_daemon() -> None:
    assert normalize_argv(["--device", "x"]) == ["run", "--device", "x"]
    assert normalize_argv(["profile", "--space", "s"])[0] == "profile"
    assert normalize_argv([]) == ["--help"]


def test_missing_server_token_device_are_usage_errors(capsys: pytest.CaptureFixture, monkeypatch) -> None:
    for var in ("LUT_SERVER", "LUT_TOKEN", "LUT_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["--device", "cpu-x86", "--token", "t"]) == cli.EXIT_USAGE
    assert "pass --server URL or set LUT_SERVER" in capsys.readouterr().err
    assert cli.main(["--device", "cpu-x86", "--server", "http://127.0.0.1:9"]) == cli.EXIT_USAGE
    assert "no token" in capsys.readouterr().err
    assert cli.main(["run", "--server", "http://127.0.0.1:9", "--token", "t"]) == cli.EXIT_USAGE
    assert "no device class" in capsys.readouterr().err


def test_environment_supplies_defaults(monkeypatch) -> None:
    monkeypatch.setenv("LUT_SERVER", "http://lut:8000")
    monkeypatch.setenv("LUT_TOKEN", "secret")
    monkeypatch.setenv("LUT_DEVICE", "xavier")
    args = cli.build_parser().parse_args(["run"])
    assert (args.server, args.token, args.device) == ("http://lut:8000", "secret", "xavier")
    args = cli.build_parser().parse_args(["run", "--device", "orin"])
    assert args.device == "orin"


def test_unknown_backend_and_unsupported_option(capsys: pytest.CaptureFixture) -> None:
    args = cli.build_parser().parse_args(["run", "--backend", "pytorch-cpu", "--cuda-graphs"])
    with pytest.raises(cli.UsageError, match="no --cuda-graphs option .it is for pytorch-cuda, tensorrt"):
        cli.backend_options("pytorch-cpu", args)
    args = cli.build_parser().parse_args(["run", "--backend", "nope"])
    with pytest.raises(cli.UsageError, match="unknown backend 'nope'"):
        cli.backend_options("nope", args)


def test_names_are_sanitized() -> None:
    assert cli.sanitize_name("Xavier_01.Lab Bench!") == "xavier_01.lab-bench"
    assert cli.sanitize_name("---") == "agent"
    assert len(cli.sanitize_name("a" * 100)) == 64


def test_device_class_from_a_jetson_device_tree(tmp_path: Path) -> None:
    dt = tmp_path / "proc" / "device-tree"
    dt.mkdir(parents=True)
    (dt / "model").write_bytes(b"Jetson-AGX Xavier Developer Kit\x00")
    assert cli.guess_device_class(str(tmp_path)) == "xavier"
    assert cli.guess_device_class(str(tmp_path / "empty")).startswith("cpu-")
    (dt / "model").write_bytes(b"Jetson-AGX\x00")  # some devkits: only the SoC in compatible tells
    (dt / "compatible").write_bytes(b"nvidia,p2972-0000\x00nvidia,galen\x00nvidia,tegra194\x00")
    assert cli.guess_device_class(str(tmp_path)) == "xavier"


def test_backends_lists_every_backend_with_a_reason(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["backends", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"pytorch-cpu", "pytorch-cuda", "tensorrt", "onnxruntime"}
    assert out["pytorch-cpu"]["usable"] is True
    for name, row in out.items():
        assert row["usable"] == (row["reason"] is None), name


def test_probe_json_is_the_fingerprint(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    from profiler_agent.probe import probe

    assert cli.main(["probe", "--root", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(probe(root=str(tmp_path)), default=str))
    assert cli.main(["probe", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("fingerprint ")


def test_entry_point_runs_as_a_program() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "profiler_agent.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    assert "profile" in out.stdout and "sync" in out.stdout and "exit codes" in out.stdout


def test_progress_on_a_log_stream_prints_start_end_and_eta() -> None:
    t = [0.0]
    buf = io.StringIO()
    bar = Progress("ops", stream=buf, log_every=10.0, clock=lambda: t[0])
    bar(0, 4, "")
    t[0] = 5.0
    bar(1, 4, "conv:a")  # within log_every: not printed
    t[0] = 20.0
    bar(2, 4, "ir:b")
    t[0] = 40.0
    bar(4, 4, "")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    assert "2/4" in lines[1] and "eta 00:20" in lines[1] and "ir:b" in lines[1]
    assert "4/4" in lines[2] and "100%" in lines[2]
    assert fmt_duration(3725) == "1:02:05"


def test_probe_on_the_xavier_fixture(capsys: pytest.CaptureFixture) -> None:
    root = str(Path(__file__).resolve().parents[1] / "fixtures" / "xavier")
    assert cli.main(["probe", "--root", root, "--json"]) == 0
    fp = json.loads(capsys.readouterr().out)
    assert fp["jetson"]["l4t"] and fp["jetson"]["jetson_clocks"] is False
    assert cli.main(["probe", "--root", root]) == 0
    out = capsys.readouterr().out
    assert "jetson.module: NVIDIA Jetson AGX Xavier" in out
    assert "warning: GPU clock is not locked" in out
    assert cli.guess_device_class(root) == "xavier"


def test_target_settings_go_into_the_target_id() -> None:
    from profiler_agent.backends import get_backend

    args = cli.build_parser().parse_args(["run", "--threads", "1", "--target-setting", "power_mode=MAXN",
                                          "--batch-size", "2"])
    with get_backend("pytorch-cpu", threads=1) as b:
        assert target(b, args, "cpu-test").id == "cpu-test/pytorch-cpu/fp32/b2@power_mode=MAXN,threads=1"
        args.target_setting = ["oops"]
        with pytest.raises(cli.UsageError, match="name=value"):
            target(b, args, "cpu-test")
        args.target_setting = []
        with pytest.raises(cli.UsageError, match="lower-case"):
            target(b, args, "Bad Device")
