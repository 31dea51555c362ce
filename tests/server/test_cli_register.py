"""``lut register``: enqueue a space's missing ops, on a database or over REST, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import yaml


def lut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutcore", *args], capture_output=True, text=True, timeout=120)


def test_register_on_a_database_is_idempotent(tmp_path):
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    args = ["register", "squeezenas-small", "--target", "cpu/pytorch-cpu/fp32@threads=1", "-r", "64x128", "--db", db]
    first = json.loads(lut(*args, "--json").stdout)
    again = json.loads(lut(*args, "--json").stdout)
    assert first["enqueued"] == first["unique_ops"] > 100 and again["enqueued"] == 0
    r = lut("register", "squeezenas-tiny", "--target", "cpu/pytorch-cpu/fp32", "--db", db)
    assert r.returncode == 1 and "unknown space 'squeezenas-tiny'" in r.stderr and "Traceback" not in r.stderr


def test_register_a_space_file_over_rest(live_server, tmp_path):
    f = tmp_path / "tiny.yaml"
    f.write_text(
        "name: tiny-cli\ninput: [3, 32, 32]\ncatalogue: fbnet\n"
        "stem: [{op: conv, c_out: 8, kernel: 3, stride: 2}]\nlayers: [{c_out: 8}, {c_out: 16, stride: 2}]\n"
    )
    args = ["register", str(f), "--target", "cpu/onnxruntime/fp32", "--server", live_server.url, "--json"]
    r = lut(*args)
    assert r.returncode == 1 and "401" in r.stderr and "search" in r.stderr  # anonymous registration is refused
    r = lut(*args, "--token", live_server.search_token())
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["enqueued"] == out["unique_ops"] > 0
    body = {"space": yaml.safe_load(f.read_text()), "target": "cpu/onnxruntime/fp32", "metric": "median_ms"}
    cm = httpx.post(f"{live_server.url}/api/v1/cost-matrix", json=body, timeout=30).json()
    assert cm["coverage"]["measured"] < cm["coverage"]["total"] and cm["missing"]


def test_register_a_taken_name_on_a_database_is_refused_cleanly(tmp_path):
    db = f"sqlite:///{tmp_path / 'lut.db'}"
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\ninput: [3, 32, 32]\ncatalogue: fbnet\nlayers: [{c_out: 8}, {c_out: 16, stride: 2}]\n")
    args = ["register", str(f), "--target", "cpu/onnxruntime/fp32", "--db", db]
    assert lut(*args).returncode == 0 and lut(*args).returncode == 0  # the same definition again: idempotent
    f.write_text("name: mine\ninput: [3, 32, 32]\ncatalogue: fbnet\nlayers: [{c_out: 8}]\n")
    r = lut(*args)
    assert r.returncode == 1 and "mine-v2" in r.stderr and "Traceback" not in r.stderr

