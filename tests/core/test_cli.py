"""The ``lut`` command's core subcommands, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys


def lut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutcore", *args], capture_output=True, text=True, timeout=120)


def test_spaces_lists_builtins():
    r = lut("spaces", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    names = {s["name"] for s in d["spaces"]}
    assert {"squeezenas-small", "squeezenas-large", "squeezenas-xlarge", "fbnet", "tfnas", "mobilenetv2"} <= names
    assert "squeezenas-lat-small" in d["architectures"]


def test_space_show_json_and_table():
    r = lut("space", "show", "squeezenas-small", "--resolution", "256x512", "--json")
    d = json.loads(r.stdout)
    assert d["resolution"] == "256x512" and len(d["layers"]) == 20 and len(d["candidates"]) == 13
    assert d["layers"][0]["cells"][0]["key"].startswith("ir:k3_d1_e1_g2:c16x128x256->c16:s2")
    assert d["unique_ops"] == len(
        {c["key"] for layer in d["layers"] for c in layer["cells"] if c["valid"] and c["macs"]}
        | {f["key"] for f in d["fixed"]}
    )
    r = lut("space", "show", "mobilenetv2")
    assert r.returncode == 0 and "invalid" in r.stdout and "unique ops to measure: 70" in r.stdout


def test_arch_show_json_has_gmacs_and_params():
    r = lut("arch", "show", "squeezenas-lat-large", "--json")
    d = json.loads(r.stdout)
    assert abs(d["gmacs"] - 19.57) / 19.57 < 0.005
    assert abs(d["params_m"] - 1.92) < 0.01
    assert len(d["ops"]) > 20


def test_errors_are_clear_and_exit_nonzero():
    r = lut("space", "show", "squeezenas-small", "--resolution", "100x200")
    assert r.returncode == 1 and "divisible by 16" in r.stderr and "Traceback" not in r.stderr
    r = lut("arch", "show", "nope")
    assert r.returncode == 1 and "unknown architecture 'nope'" in r.stderr
