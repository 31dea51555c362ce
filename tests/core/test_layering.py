"""Layering rules: the core imports without torch and, with the agent, needs only Python 3.8."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _Block())
"""


def run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_core_imports_and_works_without_torch():
    code = (
        BLOCK_TORCH
        + """
import lutcore, lutcore.ops, lutcore.spaces, lutcore.records, lutcore.catalogues, lutcore.cli
from lutcore.spaces import get_arch, get_space
assert abs(get_arch("squeezenas-lat-small").macs() / 1e9 - 4.47) < 0.03
assert len(get_space("fbnet").unique_ops()) > 0
from lutcore.cli.main import main
assert main(["arch", "show", "squeezenas-mac-small", "--json"]) == 0
assert "torch" not in sys.modules
try:
    import lutcore.torch
except ImportError:
    pass
else:
    raise SystemExit("torch was importable")
"""
    )
    r = run_py(code)
    assert r.returncode == 0, r.stderr + r.stdout


def test_core_and_agent_need_at_most_python_38():
    vermin = shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin is not installed (pip install vermin)")
    paths = [str(ROOT / "lutcore"), str(ROOT / "profiler_agent")]
    r = subprocess.run(
        [
            vermin,
            "-t=3.8-",
            "--no-tips",
            "--violations",
            "--eval-annotations",
            "--backport",
            "typing_extensions",
            "--no-parse-comments",
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_core_imports_no_application():
    for path in (ROOT / "lutcore").rglob("*.py"):
        text = path.read_text()
        for app in ("profiler_agent", "lut_server", "search_client"):
            assert f"import {app}" not in text and f"from {app}" not in text, (path, app)
