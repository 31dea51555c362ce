"""scripts/gpu-smoke.sh: skips cleanly without a GPU; its driver runs end to end against the fakes
(the real TensorRTBackend constructor over fake pycuda + fake TensorRT 10)."""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from profiler_agent.backends import available_backends
from tests.agent.gpu_fakes import FakeGpu, make_pycuda_driver, make_trt

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-smoke.sh"


@pytest.mark.skipif(
    available_backends()["pytorch-cuda"] is None or available_backends()["tensorrt"] is None,
    reason="a GPU backend is usable here: the smoke test would run for real",
)
def test_smoke_script_says_no_gpu_and_exits_0(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no GPU" in proc.stdout and not (tmp_path / "out").exists()


def _fake_gpu_world(monkeypatch):
    gpu = FakeGpu(ramp_ms=0.0)
    driver = make_pycuda_driver(gpu)
    pycuda: Any = type(sys)("pycuda")  # a fake package: its driver is set below
    pycuda.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setitem(sys.modules, "tensorrt", make_trt("10.3.0", gpu))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML: time-based warm-up, no clocks
    return gpu


def test_the_real_constructor_on_pycuda_and_tensorrt(tmp_path, monkeypatch):
    _fake_gpu_world(monkeypatch)
    from lutcore.ops import Conv
    from profiler_agent.backends import get_backend
    from profiler_agent.backends.tensorrt import TensorRTBackend
    from profiler_agent.timing import TimingProtocol

    assert available_backends()["tensorrt"] is None  # TensorRT + pycuda, torch without CUDA
    b = get_backend("tensorrt", precision="fp16", cache_dir=str(tmp_path), root=str(tmp_path))
    assert isinstance(b, TensorRTBackend)
    r = b.time_op(Conv(c_in=8, h=8, w=8, c_out=8), TimingProtocol(ci=0.05, max_time_s=0.2, min_samples=5))
    assert r.env["runtime"] == "pycuda" and r.env["graphs"] and r.env["warmup"] == "full"
    assert b.target("h100").id == "h100/tensorrt/fp16"
    assert dict(b.device_key.versions) == {"runtime": "pycuda", "tensorrt": "10.3.0", "cuda_driver": "12080"}
    assert b.device_key.max_sm_mhz == 1980 and b.device_key.sm_count == 132  # from the device: no NVML here
    b.close()


@pytest.mark.slow
def test_smoke_driver_end_to_end_on_fakes(tmp_path, monkeypatch):
    _fake_gpu_world(monkeypatch)
    from profiler_agent.backends import onnx_export

    cache = {}
    real = onnx_export.export_network

    def export_once(arch, *a):
        if arch.name not in cache:
            cache[arch.name] = real(arch, *a)
        return cache[arch.name]

    monkeypatch.setattr(onnx_export, "export_network", export_once)
    text = SCRIPT.read_text()
    driver_match = re.search(r"exec timeout [^\n]*<<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert driver_match is not None
    driver = driver_match.group(1)
    path = tmp_path / "driver.py"
    path.write_text(driver)
    out = tmp_path / "figures"
    monkeypatch.setattr(sys, "argv", [str(path), str(out)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    figures = json.loads((out / "gpu-smoke.json").read_text())
    assert done.value.code == 0, figures["failed"]
    trt = {p["path"]: p for p in figures["paths"] if p["path"].startswith("tensorrt ")}
    assert set(trt) == {"tensorrt fp16", "tensorrt fp32", "tensorrt int8"}
    fp16 = trt["tensorrt fp16"]
    assert fp16["second_round"]["warmup"] == "kept" and fp16["builds"] == 4  # 3 ops + the network
    assert fp16["in_context"]["blocks"] and abs(fp16["validation"]["error"]) < 1.0
    assert {t["dtype"] for op in trt["tensorrt int8"]["ops"].values() for t in op["io"].values()} == {"int8"}
