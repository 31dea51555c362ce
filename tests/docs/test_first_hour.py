"""Issue 18's "first hour" points that are about what a new user reads: each tried as that user would."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Tuple

import httpx
import pytest

from lutcore.cli.main import build_parser
from lutcore.records import Target
from lutcore.spaces import get_space
from tests.client.lutdata import export_doc
from tests.live_server import REPO, server_env

TARGET = "cpu/pytorch-cpu/fp32@threads=1"


def run(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=str(cwd), env=server_env(), capture_output=True, text=True,
                          timeout=300)


def lut(*args: str) -> subprocess.CompletedProcess:
    return run("-m", "lutcore", *args)


def clean_error(r: subprocess.CompletedProcess) -> str:
    """The one-line `lut: error: ...` a user gets, never a traceback."""
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("lut: error: ", "search_step: error: ")), r.stderr
    return lines[0]


def test_register_validate_over_server_says_it_needs_a_token(live_server):
    args = ("register", "squeezenas-small", "--target", TARGET, "--resolution", "32x64",
            "--validate", "published,random:2", "--server", live_server.url)
    msg = clean_error(lut(*args))
    assert "401" in msg and "--token" in msg and "lut token create --search" in msg
    ok = lut(*args, "--token", live_server.search_token())
    assert ok.returncode == 0, ok.stderr
    st = lut("status", "--server", live_server.url)
    assert st.returncode == 0, st.stderr
    # coverage's total is larger than the unique ops registered: the output says why
    assert "identity (skip) keys, which cost 0 and count as measured" in st.stdout


BAD_TARGETS = [
    ("cpu/pytorch-cpu/fp99", "precision 'fp99' must be one of fp32, fp16, int8"),
    ("cpu/torch/fp32", "backend 'torch' must be one of"),
    ("cpu/pytorch-cpu/fp32@Threads=1", "setting Threads='1': names are lower-case"),
]


def test_target_errors_are_one_clean_line(tmp_path, live_server):
    search = live_server.headers(live_server.search_token())
    db = f"sqlite:///{tmp_path / 'x.db'}"
    for tid, reason in BAD_TARGETS:
        with pytest.raises(ValueError) as e:
            Target.parse(tid)
        text = str(e.value)
        assert reason in text and "\n" not in text
        assert "pydantic" not in text and "http" not in text and "validation error for" not in text
        msg = clean_error(lut("register", "squeezenas-small", "--target", tid, "--db", db))
        assert reason in msg and "pydantic" not in msg
        r = httpx.post(live_server.api + "/spaces", json={"space": "squeezenas-small", "target": tid}, headers=search)
        assert r.status_code == 422 and reason in r.json()["detail"] and "pydantic" not in r.text


@pytest.mark.slow
def test_search_step_takes_the_quickstart_lut(tmp_path):
    """`examples/search_step.py --lut lut.json` on the quickstart's LUT (squeezenas-small at 128x256)."""
    lut_file = tmp_path / "lut.json"
    lut_file.write_text(json.dumps(export_doc(get_space("squeezenas-small", "128x256"), target=TARGET)))
    r = run("examples/search_step.py", "--lut", str(lut_file), "--steps", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "squeezenas-small at 128x256" in r.stdout and "its cost:" in r.stdout
    # a LUT without the ops of the space asked for: one line and a hint, no traceback
    r = run("examples/search_step.py", "--lut", str(lut_file), "--space", "mobilenetv2")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.stderr.startswith("search_step: error: ") and "pass the --space and --resolution" in r.stderr


def options(p: argparse.ArgumentParser, path: str = "lut") -> Iterator[Tuple[str, argparse.Action]]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from options(sub, f"{path} {name}")
        elif not isinstance(a, argparse._HelpAction):
            yield path, a


def test_every_lut_option_has_help():
    seen = list(options(build_parser()))
    assert len(seen) > 40 and any(a.option_strings == ["--json"] for _, a in seen)
    bare = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in seen if not (a.help or "").strip()]
    assert not bare, f"options without help text: {bare}"
