"""Device probing on this machine's CPU and on a Jetson AGX Xavier sysfs tree kept as fixture files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from profiler_agent.probe import fingerprint_digest, probe, read_clocks
from profiler_agent.probe.jetson import jetpack_for, parse_l4t

XAVIER = Path(__file__).resolve().parents[1] / "fixtures" / "xavier"


@pytest.fixture
def board(tmp_path):
    """A writable copy of the Xavier tree, to model other states."""
    root = tmp_path / "xavier"
    shutil.copytree(XAVIER, root)
    return root


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).write_text(text + "\n")


def lock_clocks(root: Path) -> None:
    """What `sudo jetson_clocks` does: CPUs, GPU and EMC pinned at their maximum."""
    for d in (root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"):
        top = (d / "scaling_max_freq").read_text().strip()
        _write(d, "scaling_min_freq", top)
        _write(d, "scaling_cur_freq", top)
    g = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b"
    _write(root, f"{g}/min_freq", "1377000000")
    _write(root, f"{g}/cur_freq", "1377000000")
    _write(root, "sys/kernel/debug/bpmp/debug/clk/emc/mrq_rate_locked", "1")


def test_this_machine():
    fp = probe(backend="pytorch-cpu")
    assert fp["backend"] == "pytorch-cpu" and fp["jetson"] is None
    assert fp["cpu"]["model"] and fp["cpu"]["logical_cpus"] >= 1
    assert fp["software"]["torch"] and fp["software"]["onnxruntime"] and fp["software"]["python"]
    assert isinstance(fp["warnings"], list)
    assert fingerprint_digest(fp) == fingerprint_digest(probe(backend="pytorch-cpu"))
    assert fingerprint_digest(fp) != fingerprint_digest(probe(backend="onnxruntime"))
    assert "read_at" in read_clocks()


def test_xavier_identity_clocks_temperatures():
    fp = probe(XAVIER, backend="tensorrt")
    j = fp["jetson"]
    assert j["module"] == "NVIDIA Jetson AGX Xavier Developer Kit"
    assert j["soc"] == "tegra194"
    assert j["l4t"] == "35.2.1" and j["jetpack"] == "5.1"
    assert j["nvpmodel"] == {"id": 0, "name": "MAXN"}
    assert j["jetson_clocks"] is False
    assert fp["cpu"]["model"] == "NVIDIA Carmel" and fp["cpu"]["logical_cpus"] == 8
    assert fp["cpu"]["governor"] == "schedutil"
    assert fp["gpu"][0]["name"] == "gv11b"
    assert fp["system_libs"] == {"cuda": "11.4.315", "cudnn": "8.6.0", "tensorrt": "8.5.2.2"}
    c = fp["clocks"]
    assert c["gpu"]["cur_hz"] == 318750000 and c["gpu"]["max_hz"] == 1377000000
    assert c["emc"]["cur_hz"] == 2133000000 and c["emc"]["locked"] == 0
    assert c["nvpmodel"] == "MAXN"
    assert c["temps_c"]["CPU-therm"] == 41.0 and c["temps_c"]["GPU-therm"] == 39.5
    assert len(c["temps_c"]) == 8


def test_xavier_warns_when_clocks_are_not_locked():
    warns = probe(XAVIER)["warnings"]
    text = " ".join(warns)
    assert "GPU clock is not locked" in text and "EMC clock is not locked" in text
    assert "CPU clocks are not locked" in text and "jetson_clocks" in text
    assert "PMIC-Die" not in text  # a fixed 100 C placeholder on Xavier, not a hot board


def test_locked_clocks_give_no_warning(board):
    lock_clocks(board)
    fp = probe(board)
    assert fp["jetson"]["jetson_clocks"] is True
    assert fp["warnings"] == []


def test_hot_zone_warns(board):
    _write(board, "sys/class/thermal/thermal_zone2/temp", "91500")
    assert any("GPU-therm is at 91.5 C" in w for w in probe(board)["warnings"])


def test_digest_ignores_temperatures_but_not_power_mode(board):
    d0 = fingerprint_digest(probe(board))
    _write(board, "sys/class/thermal/thermal_zone1/temp", "63000")
    _write(board, "sys/devices/17000000.gv11b/devfreq/17000000.gv11b/cur_freq", "1377000000")
    assert fingerprint_digest(probe(board)) == d0
    _write(board, "var/lib/nvpmodel/status", "pmode:0003 fmode:quiet")
    fp = probe(board)
    assert fp["jetson"]["nvpmodel"] == {"id": 3, "name": "MODE_30W_ALL"}
    assert fingerprint_digest(fp) != d0


def test_nvpmodel_falls_back_to_the_configured_default(board):
    (board / "var/lib/nvpmodel/status").unlink()
    mode = probe(board)["jetson"]["nvpmodel"]
    assert mode["id"] == 2 and mode["name"] == "MODE_15W" and "default" in mode["source"]


def test_read_clocks_is_the_volatile_subset():
    c = read_clocks(XAVIER)
    assert set(c) >= {"read_at", "cpu", "gpu", "emc", "temps_c", "nvpmodel"}
    assert c["cpu"]["governors"] == ["schedutil"] and c["cpu"]["locked"] is False


def test_release_parsing():
    assert parse_l4t("# R32 (release), REVISION: 7.4, GCID: 1, BOARD: t186ref") == "32.7.4"
    assert parse_l4t("garbage") is None
    assert jetpack_for("32.7.4") == "4.6.4"
    assert jetpack_for("35.4.1") == "5.1.2"
    assert jetpack_for("36.4.3") == "6.2"
    assert jetpack_for(None) is None
