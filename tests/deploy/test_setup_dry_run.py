"""Acceptance: `deploy/jetson/setup.sh --dry-run --root tests/fixtures/xavier` prints the Xavier's
fingerprint (module, L4T release, nvpmodel mode, clocks) and runs nothing privileged.

The privileged tools (nvpmodel, jetson_clocks, systemctl, useradd, install) are shadowed on PATH
by stubs that record any call, so a dry run that ran one would be caught, not just trusted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "deploy" / "jetson" / "setup.sh"
FIXTURE = REPO / "tests" / "fixtures" / "xavier"
PRIVILEGED = ("nvpmodel", "jetson_clocks", "systemctl", "useradd", "install", "sudo")


@pytest.fixture
def sandbox(tmp_path: Path) -> Dict[str, Path]:
    """A PATH with recording stubs for the privileged tools and a profiler-agent that runs this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    for name in PRIVILEGED:
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 0\n')
        stub.chmod(0o755)
    agent = bin_dir / "profiler-agent"
    agent.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "import sys; from profiler_agent.cli import main; '
                     f'sys.exit(main())" "$@"\n')
    agent.chmod(0o755)
    return {"bin": bin_dir, "calls": calls, "tmp": tmp_path}


@pytest.fixture
def quick_agent(sandbox: Dict[str, Path]) -> Dict[str, Path]:
    """For tests about what setup.sh does rather than what it prints: a profiler-agent that answers
    `probe` at once (the real one imports torch for its library versions, seconds per call)."""
    agent = sandbox["bin"] / "profiler-agent"
    agent.write_text('#!/bin/sh\necho \'{"jetson": {"module": "stub"}, "warnings": []}\'\n')
    return sandbox


def run_setup(sandbox: Dict[str, Path], *args: str, root: Path = FIXTURE) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{sandbox['bin']}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = ["bash", str(SETUP), "--dry-run", "--root", str(root), "--venv", str(sandbox["tmp"] / "no-venv"),
           "--env-file", str(sandbox["tmp"] / "agent.env")] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=str(REPO))


def calls(sandbox: Dict[str, Path]) -> List[str]:
    return sandbox["calls"].read_text().splitlines() if sandbox["calls"].exists() else []


def fixture_text(rel: str) -> str:
    return (FIXTURE / rel).read_text(errors="replace").replace("\x00", "").strip()


def test_dry_run_prints_the_xavier_fingerprint(sandbox: Dict[str, Path]) -> None:
    r = run_setup(sandbox)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    # module name, from the device tree
    model = fixture_text("proc/device-tree/model")
    assert "Xavier" in model
    assert re.search(rf"^module\s+{re.escape(model)}$", out, re.M), out
    # L4T release, from /etc/nv_tegra_release ("# R35 (release), REVISION: 2.1" -> 35.2.1)
    m = re.search(r"R(\d+) \(release\), REVISION: (\d+\.\d+)", fixture_text("etc/nv_tegra_release"))
    assert m is not None
    l4t = f"{m.group(1)}.{m.group(2)}"
    assert re.search(rf"^L4T\s+{re.escape(l4t)} \(JetPack 5", out, re.M), out
    # power mode: id from the nvpmodel status, name from nvpmodel.conf
    mode_match = re.search(r"pmode:(\d+)", fixture_text("var/lib/nvpmodel/status"))
    assert mode_match is not None
    mode = int(mode_match.group(1))
    name_match = re.search(rf"POWER_MODEL\s+ID={mode}\s+NAME=(\S+?)\s*>", fixture_text("etc/nvpmodel.conf"))
    assert name_match is not None
    name = name_match.group(1)
    assert re.search(rf"^nvpmodel\s+mode {mode} \({re.escape(name)}\)$", out, re.M), out
    # clocks: GPU (devfreq) and EMC, in MHz, from the fixture's sysfs
    gpu_dir = next(FIXTURE.glob("sys/devices/*gv11b/devfreq/*"))
    gpu_mhz = round(int((gpu_dir / "cur_freq").read_text()) / 1e6)
    assert re.search(rf"^clock gpu\s+{gpu_mhz} MHz \(max 1377 MHz\)", out, re.M), out
    emc_mhz = round(int(fixture_text("sys/kernel/debug/bpmp/debug/clk/emc/rate")) / 1e6)
    assert re.search(rf"^clock emc\s+{emc_mhz} MHz", out, re.M), out
    assert re.search(r"^clock cpu\s+\d+ MHz", out, re.M), out
    assert re.search(r"^fingerprint [0-9a-f]{8,}$", out, re.M), "the digest the agent reports"
    assert '"module":' in out, "the full fingerprint JSON follows the summary"
    # and nothing privileged ran
    assert calls(sandbox) == []
    assert not (sandbox["tmp"] / "agent.env").exists()


def test_dry_run_says_what_it_would_do(quick_agent: Dict[str, Path]) -> None:
    sandbox = quick_agent
    r = run_setup(sandbox, "--mode", "2", "--server", "http://lut:8000", "--token", "lut_secret_token_1234",
                  "--name", "xavier-01")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "would run: nvpmodel -m 2" in out
    assert "would run: jetson_clocks" in out
    assert "would run: systemctl enable --now profiler-agent.service" in out
    assert "LUT_NAME=xavier-01" in out and "LUT_DEVICE=xavier" in out and "LUT_SERVER=http://lut:8000" in out
    assert "lut_secret_token_1234" not in out, "the token is masked"
    assert calls(sandbox) == []


def test_current_mode_is_not_set_again_and_no_clocks_is_honoured(quick_agent: Dict[str, Path]) -> None:
    r = run_setup(quick_agent, "--mode", "0", "--no-clocks")
    assert r.returncode == 0, r.stderr
    assert "already set" in r.stdout and "nvpmodel -m" not in r.stdout
    assert "would run: jetson_clocks" not in r.stdout


def test_unknown_power_mode_is_refused(sandbox: Dict[str, Path]) -> None:
    r = run_setup(sandbox, "--mode", "42")
    assert r.returncode != 0
    assert "power mode 42 is not defined" in r.stderr


def test_a_tree_that_is_not_a_jetson_is_refused(sandbox: Dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = run_setup(sandbox, root=tmp_path / "empty")
    assert r.returncode != 0 and "not an L4T (Jetson) system" in r.stderr


def test_a_real_run_needs_root_and_no_fixture(sandbox: Dict[str, Path]) -> None:
    env = dict(os.environ, PATH=f"{sandbox['bin']}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["bash", str(SETUP), "--root", str(FIXTURE)], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode != 0 and "only makes sense with --dry-run" in r.stderr
    assert calls(sandbox) == []


def test_real_run_against_stubs(sandbox: Dict[str, Path], tmp_path: Path) -> None:
    """The non-dry path, on the fixture tree with the privileged tools stubbed: the calls it makes,
    the unit and env file it writes (a copy of setup.sh that allows --root and writes units to tmp)."""
    if os.geteuid() != 0:
        pytest.skip("a real run of setup.sh needs root")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copy(sandbox["bin"] / "profiler-agent", venv / "bin" / "profiler-agent")
    (sandbox["bin"] / "install").unlink()  # the real `install` writes the env file's directory
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    script = SETUP.read_text()
    guard = 'if [[ "$ROOT" != / && $DRY_RUN -eq 0 ]]; then'
    assert guard in script and "UNIT_DIR=/etc/systemd/system" in script
    script = script.replace(guard, "if false; then").replace("UNIT_DIR=/etc/systemd/system", f"UNIT_DIR={unit_dir}")
    copy = tmp_path / "jetson"
    copy.mkdir()
    (copy / "setup.sh").write_text(script)
    for name in ("profiler-agent.service", "fingerprint_summary.py"):
        shutil.copy(SETUP.with_name(name), copy / name)
    env = dict(os.environ, PATH=f"{sandbox['bin']}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    env_file = tmp_path / "etc" / "agent.env"
    r = subprocess.run(["bash", str(copy / "setup.sh"), "--root", str(FIXTURE), "--venv", str(venv),
                        "--env-file", str(env_file), "--mode", "2", "--server", "http://lut:8000",
                        "--token", "lut_tok", "--name", "xav-7"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    made = [c.strip() for c in calls(sandbox) if not c.startswith("useradd")]  # useradd only when the user is new
    assert made == ["nvpmodel -m 2", "jetson_clocks", "systemctl daemon-reload",
                    "systemctl enable --now profiler-agent.service"], made
    unit = (unit_dir / "profiler-agent.service").read_text()
    assert f"ExecStart={venv}/bin/profiler-agent run $LUT_AGENT_ARGS" in unit
    assert f"EnvironmentFile={env_file}" in unit and "ExecStartPre=+/usr/bin/jetson_clocks" in unit
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    written = dict(ln.split("=", 1) for ln in env_file.read_text().splitlines())
    assert written == {"LUT_SERVER": "http://lut:8000", "LUT_TOKEN": "lut_tok", "LUT_NAME": "xav-7",
                       "LUT_DEVICE": "xavier", "LUT_BACKEND": "tensorrt", "LUT_PRECISION": "fp16",
                       "LUT_AGENT_ARGS": ""}
    assert re.search(r"^nvpmodel\s+mode 0 \(MAXN\)$", r.stdout, re.M), "the fingerprint follows"
