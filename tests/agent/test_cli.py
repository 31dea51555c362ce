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


def _without_times(fingerprint: dict) -> dict:
    """The two probes run a moment apart; only their clock stamps may differ."""
    out = dict(fingerprint, probed_at=None)
    out["clocks"] = dict(out["clocks"], read_at=None)
    return out


def test_probe_json_is_the_fingerprint(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    from profiler_agent.probe import probe

    assert cli.main(["probe", "--root", str(tmp_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    direct = json.loads(json.dumps(probe(root=str(tmp_path)), default=str))
    assert _without_times(printed) == _without_times(direct)
    assert printed["probed_at"] and printed["clocks"]["read_at"]
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


def _subparsers(parser):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_of_every_command_has_help_text() -> None:
    for name, sub in _subparsers(cli.build_parser()).items():
        for action in sub._actions:
            if action.option_strings:
                assert action.help, f"{name} {'/'.join(action.option_strings)} has no help"
        flags = {s for a in sub._actions for s in a.option_strings}
        assert "--log-level" in flags, name
        if name not in ("run", "flush"):  # the daemon logs; flush prints one line
            assert "--json" in flags, name


def test_log_level_overrides_verbose_and_quiet() -> None:
    import logging

    from profiler_agent.cli.main import log_level

    parse = cli.build_parser().parse_args
    assert log_level(parse(["backends"])) == logging.INFO
    assert log_level(parse(["backends", "-q"])) == logging.WARNING
    assert log_level(parse(["backends", "-v"])) == logging.DEBUG
    assert log_level(parse(["backends", "-v", "--log-level", "error"])) == logging.ERROR
    with pytest.raises(SystemExit):
        parse(["backends", "--log-level", "loud"])


def test_the_servers_calibration_is_a_readable_line_not_a_dict() -> None:
    from lutcore.calibration import Calibration
    from profiler_agent.cli.validate import text_report
    from profiler_agent.workflows.validation import describe_server_calibration

    cal = Calibration(a=1.1, b=0.25, n_fit=10, model="affine").to_dict()
    line = describe_server_calibration({"calibration": cal})
    assert line == "affine: a=1.1000, b=0.2500 ms (fitted on 10)"
    assert describe_server_calibration({"calibration": None}) == "none"
    held = {"n": 10, "median_abs_error": 0.0312}
    assert describe_server_calibration({"calibration": cal, "heldout_summary": held}) == (
        "affine: a=1.1000, b=0.2500 ms (fitted on 10); held-out median |error| 3.12% (n=10)")
    raw = {"n": 2, "median_abs_error": 0.05, "max_abs_error": 0.08, "within_5pct": 0.5, "within_10pct": 1.0}
    lines = text_report([], {"raw": raw, "server_calibration": {"calibration": cal}})
    assert lines[-1] == "server calibration: affine: a=1.1000, b=0.2500 ms (fitted on 10)"
    assert lines[-2].startswith("raw: median |error| 5.00%") and not any("{" in x for x in lines)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_queue_progress_logs_a_line_per_claim_with_an_eta_from_the_queues_own_rate(caplog) -> None:
    import logging

    from profiler_agent.progress import QueueProgress

    t = [0.0]
    qp = QueueProgress("cpu-test/pytorch-cpu/fp32", stream=io.StringIO(), clock=lambda: t[0])
    with caplog.at_level(logging.INFO, logger="profiler_agent"):
        qp.report({"queued": 100, "claimed": 0, "done": 20, "parked": 0})  # done before this agent: no rate yet
        t[0] = 30.0
        qp.report({"queued": 60, "claimed": 10, "done": 50, "parked": 0})  # 30 jobs in 30 s, 60 to go
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all(x.startswith("progress cpu-test/pytorch-cpu/fp32 [") for x in lines)
    assert "20/120" in lines[0] and "eta --:--" in lines[0]
    assert "50/120" in lines[1] and "eta 01:10" in lines[1] and "(60 queued, 10 leased)" in lines[1]


def test_queue_progress_draws_a_bar_on_a_terminal(caplog) -> None:
    import logging

    from profiler_agent.progress import QueueProgress

    term = _Tty()
    qp = QueueProgress("t", stream=term)
    with caplog.at_level(logging.INFO, logger="profiler_agent"):
        qp.report({"queued": 1, "claimed": 1, "done": 2})
        qp.report({"queued": 0, "claimed": 0, "done": 4})
    assert caplog.records == []  # drawn, not logged
    assert term.getvalue().count("\r\x1b[2K") == 2 and "4/4" in term.getvalue() and term.getvalue().endswith("\n")
