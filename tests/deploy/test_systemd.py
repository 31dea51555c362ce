"""profiler-agent.service: required keys, env file coverage, and `systemd-analyze verify`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "jetson" / "profiler-agent.service"
ENV_EXAMPLE = REPO / "deploy" / "jetson" / "agent.env.example"
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecReload")


def parse_unit(text: str) -> Dict[str, Dict[str, List[str]]]:
    """systemd's INI dialect: [Section], Key=Value, repeated keys accumulate, '#'/';' comments."""
    sections: Dict[str, Dict[str, List[str]]] = {}
    current = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if m:
            current = sections.setdefault(m.group(1), {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"line {n}: {line!r} is neither a [Section] nor Key=Value inside one")
        key, value = (s.strip() for s in line.split("=", 1))
        current.setdefault(key, []).append(value)
    return sections


def test_unit_has_what_a_long_running_agent_needs() -> None:
    u = parse_unit(UNIT.read_text())
    assert set(u) == {"Unit", "Service", "Install"}
    assert "network-online.target" in u["Unit"]["After"][0].split()
    assert "network-online.target" in u["Unit"]["Wants"][0].split()
    svc = u["Service"]
    assert svc["Restart"] == ["on-failure"]
    assert svc["EnvironmentFile"] == ["/etc/nas-lut/agent.env"]
    start = svc["ExecStart"][0].split()
    assert start[0].endswith("/bin/profiler-agent") and start[1] == "run", start
    assert svc["User"][0] not in ("root", "0"), "the agent runs as its own user"
    assert any("jetson_clocks" in v for v in svc.get("ExecStartPre", [])), "clocks re-pinned at each start"
    assert u["Install"]["WantedBy"] == ["multi-user.target"]


def test_env_example_sets_every_variable_the_unit_and_agent_use() -> None:
    env = dict(
        ln.split("=", 1) for ln in ENV_EXAMPLE.read_text().splitlines() if ln.strip() and not ln.startswith("#")
    )
    used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", UNIT.read_text()))
    assert used <= set(env), f"the unit uses {sorted(used - set(env))} that agent.env.example does not set"
    for var in ("LUT_SERVER", "LUT_TOKEN", "LUT_NAME", "LUT_DEVICE", "LUT_BACKEND", "LUT_PRECISION"):
        assert env.get(var), f"agent.env.example lacks {var}"
    assert env["LUT_DEVICE"] == "xavier"


def test_parser_rejects_stray_lines() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_unit("Restart=on-failure\n[Service]\n")


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` with the board-only executables swapped for a stub that exists here."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    stub = tmp_path / "stub"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    lines = []
    for line in UNIT.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key in EXEC_KEYS:
            prefix_match = re.match(r"[-+@:!]*", value)
            assert prefix_match is not None  # the pattern matches the empty string
            prefix = prefix_match.group(0)
            rest = value[len(prefix):].split(" ", 1)
            assert rest[0].startswith("/"), f"{key} needs an absolute path: {value}"
            line = f"{key}={prefix}{stub}" + (" " + rest[1] if len(rest) > 1 else "")
        lines.append(line)
    unit = tmp_path / UNIT.name
    unit.write_text("\n".join(lines) + "\n")
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    if r.returncode != 0 and "Failed to" in out and "bus" in out.lower():
        pytest.skip(f"systemd-analyze cannot run here: {out.strip()[:200]}")
    assert r.returncode == 0, out
    assert "profiler-agent.service:" not in out, out  # no warnings about our unit's lines
