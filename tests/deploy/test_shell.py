"""The deployment shell scripts: executable, syntactically valid, shellcheck-clean."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "deploy").rglob("*.sh"))


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def test_the_scripts_are_there() -> None:
    names = {_rel(p) for p in SCRIPTS}
    assert {"deploy/server-entrypoint.sh", "deploy/jetson/setup.sh", "deploy/jetson/install-venv.sh"} <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=_rel)
def test_executable_with_a_shebang_and_valid_syntax(path: Path) -> None:
    assert os.access(path, os.X_OK), f"{_rel(path)} is not executable (chmod +x)"
    shebang = path.read_text().splitlines()[0]
    shell = "sh" if shebang == "#!/bin/sh" else "bash"
    assert shebang in ("#!/bin/sh", "#!/usr/bin/env bash"), f"{_rel(path)}: unexpected shebang {shebang}"
    r = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("path", SCRIPTS, ids=_rel)
def test_shellcheck_clean(path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    r = subprocess.run([shellcheck, "--external-sources", "--format=gcc", str(path)],
                       capture_output=True, text=True, timeout=60, cwd=path.parent)
    assert r.returncode == 0, r.stdout + r.stderr


def test_install_venv_dry_run_plans_a_system_site_packages_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    r = subprocess.run(["bash", str(REPO / "deploy/jetson/install-venv.sh"), "--dry-run", "--venv", str(venv)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"-m venv --system-site-packages {venv}" in r.stdout
    assert "developer.download.nvidia.com/compute/redist/jp/" in r.stdout, "NVIDIA's JetPack torch wheel"
    assert "PIP_CONSTRAINT=" in r.stdout and "[agent,trt]" in r.stdout.replace("\\", "")
    assert not venv.exists(), "a dry run created the venv"


def test_install_venv_rejects_a_wrong_source_tree(tmp_path: Path) -> None:
    r = subprocess.run(["bash", str(REPO / "deploy/jetson/install-venv.sh"), "--dry-run", "--src", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not the nas-lut source tree" in r.stderr
