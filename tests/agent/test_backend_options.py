"""Backends declare their options once (``backends.registry``); the command line offers every one of them."""

from __future__ import annotations

import inspect
import sys
from typing import Any, Dict

import pytest

from profiler_agent import cli
from profiler_agent.backends import REGISTRY, backend_class
from profiler_agent.cli import components

PROFILE = ["profile", "--space", "x", "-o", "y"]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_backend_declares_exactly_its_constructors_keywords(name):
    entry = REGISTRY[name]
    params = inspect.signature(backend_class(name).__init__).parameters
    for opt in entry.options:
        assert opt.name in params, opt.name
        assert params[opt.name].default == opt.default, opt.name
        if opt.choices is not None and opt.default is not None:
            assert opt.default in opt.choices
    undeclared = set(params) - {"self", "precision", "root"} - {o.name for o in entry.options}
    assert not undeclared, f"{name}: keywords the command line cannot set: {sorted(undeclared)}"
    assert ("root" in params) == entry.reads_root


def test_every_declared_option_has_a_flag_with_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for entry in REGISTRY.values():
        for opt in entry.options:
            assert opt.option in text, opt.option
    for flag in ("--opt-level", "--workspace-mb", "--int8-range", "--engine-cache-dir", "--device-index", "--tf32"):
        assert flag in text


def test_cuda_flags_become_the_backends_keywords():
    args = cli.build_parser().parse_args(PROFILE + ["--backend", "pytorch-cuda", "--precision", "fp16",
                                                    "--device-index", "2", "--tf32", "--no-cudnn-benchmark",
                                                    "--graph-k", "8", "--max-cached-ops", "4"])
    assert cli.backend_options("pytorch-cuda", args) == {
        "precision": "fp16", "device_index": 2, "tf32": True, "cudnn_benchmark": False, "graph_k": 8,
        "max_cached_ops": 4}
    args = cli.build_parser().parse_args(PROFILE + ["--backend", "pytorch-cuda"])
    assert cli.backend_options("pytorch-cuda", args) == {"precision": "fp32"}  # the backend's own defaults


def test_a_flag_the_backend_does_not_declare_is_a_usage_error(capsys, tmp_path):
    args = cli.build_parser().parse_args(PROFILE + ["--opt-level", "3"])
    with pytest.raises(cli.UsageError, match=r"backend pytorch-cpu has no --opt-level option \(it is for tensorrt\)"):
        cli.backend_options("pytorch-cpu", args)
    out = tmp_path / "run.jsonl"
    argv = ["profile", "--space", "mobilenetv2", "-o", str(out), "--workspace-mb", "64", "--device", "cpu-test"]
    assert cli.main(argv) == cli.EXIT_USAGE
    assert "no --workspace-mb option" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):  # out of the declared choices: argparse refuses it
        cli.build_parser().parse_args(PROFILE + ["--opt-level", "9"])


def test_tensorrt_flags_reach_the_engine_builder(tmp_path, monkeypatch):
    """On the TensorRT fakes: every flag ends up in the build settings, the cache, the runtime, the timer."""
    from profiler_agent.backends import tensorrt as trt_backend
    from tests.agent.gpu_fakes import FakeClocks, FakeGpu, FakeRuntime, make_trt

    gpu = FakeGpu()
    monkeypatch.setitem(sys.modules, "tensorrt", make_trt("10.3.0", gpu))
    seen: Dict[str, Any] = {}

    def runtime(device_index, prefer):
        seen.update(device_index=device_index, prefer=prefer)
        return FakeRuntime(gpu)

    def clocks(root, device_index, pci_bus_id):
        seen.update(clock_index=device_index)
        return FakeClocks(gpu)

    monkeypatch.setattr(trt_backend, "default_runtime", runtime)
    monkeypatch.setattr("profiler_agent.probe.gpu_clocks.clock_reader", clocks)
    monkeypatch.setattr(trt_backend.TensorRTBackend, "unavailable_reason", classmethod(lambda cls: None))
    args = cli.build_parser().parse_args(PROFILE + [
        "--backend", "tensorrt", "--precision", "int8", "--opt-level", "4", "--workspace-mb", "256",
        "--int8-range", "2.5", "--engine-cache-dir", str(tmp_path / "engines"), "--device-index", "1",
        "--no-cuda-graphs", "--graph-k", "4", "--runtime", "pycuda", "--tf32", "--on-cache-reject", "raise",
        "--no-profile-layers", "--max-cached-ops", "3", "--no-use-engine-cache"])
    b = components.backend(args)
    try:
        s = b.build_settings
        assert (s.precision, s.opt_level, s.workspace_mb, s.int8_range, s.tf32) == ("int8", 4, 256, 2.5, True)
        assert seen == {"device_index": 1, "prefer": "pycuda", "clock_index": 1}
        assert b.layout.base.is_relative_to(tmp_path / "engines")
        assert (b.gpu_timer.options.graphs, b.gpu_timer.options.graph_k) == (False, 4)
        assert (b.on_cache_reject, b.profile_layers, b.use_engine_cache, b.prepared.size) == ("raise", False, False, 3)
        settings = b.target("h100").settings
        assert (settings["opt_level"], settings["cuda_graphs"], settings["tf32"]) == ("4", "0", "1")
    finally:
        b.close()


def test_backends_command_lists_each_backends_options(capsys):
    import json

    assert cli.main(["backends", "--json"]) == cli.EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["tensorrt"]["options"]["workspace_mb"] == {
        "flag": "--workspace-mb", "type": "int", "default": 1024, "help": "builder workspace in MiB (default 1024)"}
    assert set(out["pytorch-cpu"]["options"]) == {"threads", "retain_memory"}
    assert cli.main(["backends"]) == cli.EXIT_OK
    text = capsys.readouterr().out
    assert "tensorrt: --engine-cache-dir, --workspace-mb, --opt-level" in text
