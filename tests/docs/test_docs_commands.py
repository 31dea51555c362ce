"""The commands README.md and docs/ show are tried, so the docs cannot drift from the code.

How each block is tried, and the markers that change it, are in tests/docs/blocks.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from tests.docs.blocks import CLIS, REPO, Block, all_blocks, commands
from tests.live_server import free_port, server_env

BLOCKS = all_blocks()
LINKED = ("examples", "scripts", "deploy", "tests", "bench")
BLOCK_TIMEOUT_S = 420


def sessions() -> List[List[Block]]:
    """Each tried block with the ``then`` blocks that follow it."""
    out: List[List[Block]] = []
    for b in BLOCKS:
        if b.then:
            assert out and out[-1][-1].path == b.path, f"{b.id}: 'then' needs a block before it in the same file"
            out[-1].append(b)
        elif b.tried and not b.options:
            out.append([b])
    return out


def shims(d: Path) -> Path:
    """lut, profiler-agent and python from this checkout (the installed console scripts may be another's)."""
    bin_dir = d / "bin"
    bin_dir.mkdir()
    for name, argv in {"python": [], "python3": [], **CLIS}.items():
        p = bin_dir / name
        p.write_text("#!/bin/sh\nexec " + " ".join([sys.executable, *argv]) + ' "$@"\n')
        p.chmod(0o755)
    return bin_dir


def script(session: List[Block], port: int) -> str:
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    if session[0].server:
        lines += ["lut serve --db sqlite:///lut.db --port 8000 > lut-serve.log 2>&1 &",
                  "for _ in $(seq 300); do curl -sf http://127.0.0.1:8000/healthz >/dev/null && break; sleep 0.2; done",
                  "curl -sf http://127.0.0.1:8000/healthz >/dev/null"]
    for b in session:
        text = b.text
        for old, new in b.replace:
            assert old in text, f"{b.id}: 'replace {old}' does not occur in the block"
            text = text.replace(old, new)
        lines.append(text if b.lang in ("bash", "sh") else f"python - <<'DOCS_TEST_PY'\n{text}DOCS_TEST_PY")
    return "\n".join(lines).replace("8000", str(port)) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("session", sessions(), ids=lambda s: s[0].id)
def test_doc_block_runs(session: List[Block], tmp_path: Path) -> None:
    for name in LINKED:
        (tmp_path / name).symlink_to(REPO / name)
    env = server_env({"PATH": f"{shims(tmp_path)}:{os.environ['PATH']}", "LUT_ADMIN_TOKEN":
                      "lut_docs_test_admin_" + os.urandom(12).hex(), "LUT_ACCESS_LOG": "0",
                      "LUT_SPOOL": str(tmp_path / "spool"), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    text = script(session, free_port())
    (tmp_path / "block.sh").write_text(text)
    r = run_in_own_group(tmp_path, env)
    if r is None:
        pytest.fail(f"{session[0].id} ran past {BLOCK_TIMEOUT_S}s:\n{text}")
    log = tmp_path / "lut-serve.log"
    assert r.returncode == 0, (f"{session[0].id} failed ({r.returncode}):\n{text}\n--- stdout\n{r.stdout[-3000:]}"
                               f"\n--- stderr\n{r.stderr[-3000:]}" + (f"\n--- server\n{log.read_text()[-2000:]}"
                                                                      if log.exists() else ""))
    assert "Traceback" not in r.stderr, r.stderr[-3000:]


def run_in_own_group(cwd: Path, env: dict) -> Optional[subprocess.CompletedProcess]:
    """bash block.sh in its own process group, which is ended whatever happens: a server the block
    started in the background never outlives the test (None: it ran past BLOCK_TIMEOUT_S)."""
    p = subprocess.Popen(["bash", "block.sh"], cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=BLOCK_TIMEOUT_S)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)
    except subprocess.TimeoutExpired:
        return None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        if p.poll() is None:
            p.kill()
            p.wait()


OPTION_BLOCKS = [b for b in BLOCKS if b.options and b.skip is None]


@pytest.mark.parametrize("block", OPTION_BLOCKS, ids=lambda b: b.id)
def test_doc_block_options_exist(block: Block) -> None:
    cmds = commands(block.text)
    assert cmds, f"{block.id}: no lut/profiler-agent command in an 'options' block"
    for cli, head, flags in cmds:
        for n in range(len(head), -1, -1):  # the longest prefix of words that still names a (sub)command
            r = subprocess.run([sys.executable, *CLIS[cli], *head[:n], "--help"], cwd=str(REPO), env=server_env(),
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                break
        assert r.returncode == 0, f"{block.id}: {cli} {' '.join(head)} --help failed: {r.stderr[-1000:]}"
        missing = [f for f in flags if not re.search(re.escape(f) + r"\b", r.stdout)]
        assert not missing, f"{block.id}: `{cli} {' '.join(head[:n])}` takes no {missing}"


def test_markers_are_well_formed() -> None:
    assert sessions(), "no block to run"
    for b in BLOCKS:
        assert b.skip is None or b.skip.strip(), f"{b.id}: 'skip' needs a reason"
        assert not (b.options and (b.server or b.replace)), f"{b.id}: 'options' blocks are not run"
    shell = [b for b in BLOCKS if b.lang in ("bash", "sh")]
    assert all(b.skip is not None or b.options or b in [x for s in sessions() for x in s] for b in shell)


def test_options_check_catches_a_wrong_flag() -> None:
    """The options check itself: a flag no command takes is found missing."""
    bad = Block("x.md", 1, "bash", "lut export --server URL --no-such-flag 1 -o x.json\n", options=True)
    with pytest.raises(AssertionError, match="no-such-flag"):
        test_doc_block_options_exist(bad)


def test_a_failing_block_fails(tmp_path: Path) -> None:
    """The runner itself: a documented command that does not work fails the test."""
    bad = Block("x.md", 1, "bash", "lut space show no-such-space --resolution 32x64\n")
    with pytest.raises(AssertionError, match="no-such-space"):
        test_doc_block_runs([bad], tmp_path)
