"""The server container's command, run here without Docker against a real PostgreSQL.

The command is taken from the Dockerfile (ENTRYPOINT + CMD, the entrypoint mapped back to the
repository file the image COPYs) and its environment from docker-compose.yml's `lut_server`
service, so what starts here is what `docker compose up` starts; only the database host (the
compose service name `postgres`) and the port are swapped for the test's.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import yaml

from tests.deploy import dockerfile as df
from tests.live_server import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def container_command() -> List[str]:
    final = df.load(REPO / "Dockerfile")[-1]
    entrypoint, cmd_ins = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint is not None
    entry = entrypoint.exec_form()
    cmd = cmd_ins.exec_form() if cmd_ins else []
    assert entry is not None and cmd is not None
    sources = {df.copy_destination(i): df.copy_sources(i) for i in final.all("COPY")}
    script = REPO / sources[entry[0]][0]
    return [str(script)] + entry[1:] + cmd


def _example_env() -> Dict[str, str]:
    example = {}
    for line in (REPO / "deploy" / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, v = line.split("=", 1)
            example[k] = v
    example["POSTGRES_PASSWORD"] = "unused-here"
    return example


def _interpolate(value: str, env: Dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` with the values of env.example."""

    def resolve(m: re.Match[str]) -> str:
        return env.get(m.group(1)) or (m.group(3) if m.group(2) == ":-" else "")

    return re.sub(r"\$\{([A-Z_]+)(:-|:\?)?([^}]*)\}", resolve, value)


def compose_service(name: str) -> Dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"][name]


def compose_environment(overrides: Dict[str, str], service: str = "lut_server") -> Dict[str, str]:
    """A service's environment from docker-compose.yml, interpolated with env.example, then overrides."""
    example = _example_env()
    env = {k: _interpolate(str(v), example) for k, v in compose_service(service)["environment"].items()}
    env.update(overrides)
    return env


def compose_command(service: str, dockerfile: Path) -> List[str]:
    """ENTRYPOINT of the image plus the service's `command` (else the image's CMD)."""
    final = df.load(dockerfile)[-1]
    svc = compose_service(service)
    entrypoint, cmd_ins = final.last("ENTRYPOINT"), final.last("CMD")
    cmd = svc.get("command") or (cmd_ins.exec_form() if cmd_ins else [])
    example = _example_env()
    assert entrypoint is not None and cmd is not None
    entry = entrypoint.exec_form()
    assert entry is not None
    return entry + [_interpolate(str(c), example) for c in cmd]


class Container:
    """The container command as a subprocess, with the image's PATH (lut, python3) and this checkout."""

    def __init__(self, env: Dict[str, str], log_path: Path) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LUT_", "DATABASE_URL"))}
        base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
        base["PYTHONPATH"] = str(REPO)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process it logs
        self.proc = subprocess.Popen(container_command(), cwd=str(log_path.parent), env={**base, **env},
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_healthy(self, url: str) -> Dict[str, object]:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the container command exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(url + "/healthz", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"no /healthz answer within {START_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def containers(tmp_path: Path) -> Iterator[List[Container]]:
    started: List[Container] = []
    yield started
    for c in started:
        c.stop()


def _tables(url: str) -> List[str]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return sorted(r[0] for r in rows)


def test_container_command_is_the_entrypoint_script() -> None:
    assert "command" not in compose_service("lut_server"), "compose would override the image's command"
    cmd = container_command()
    assert cmd[0].endswith("deploy/server-entrypoint.sh") and os.access(cmd[0], os.X_OK)


@pytest.mark.postgres
def test_container_command_starts_the_server_on_postgres(pg_db_url: str, tmp_path: Path,
                                                         containers: List[Container]) -> None:
    assert _tables(pg_db_url) == [], "the test database starts empty"
    port = free_port()
    env = compose_environment({"DATABASE_URL": pg_db_url, "LUT_HOST": "127.0.0.1", "LUT_PORT": str(port)})
    c = Container(env, tmp_path / "server.log")
    containers.append(c)
    health = c.wait_healthy(f"http://127.0.0.1:{port}")
    assert health["status"] == "ok" and health["db"] == "postgresql", health
    tables = _tables(pg_db_url)
    assert "alembic_version" in tables and "tokens" in tables, f"migrations did not run: {tables}"
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught: -15, not a SIGKILL (-9).
    assert c.stop() in (0, -signal.SIGTERM), f"SIGTERM should stop the server:\n{c.log()}"


@pytest.mark.postgres
def test_secret_files_and_the_compose_cpu_agent(pg_db_url: str, tmp_path: Path, containers: List[Container]) -> None:
    """deploy/compose.secrets.yml (DATABASE_URL_FILE, LUT_ADMIN_TOKEN_FILE), then the compose `agent`
    service's command and environment against that server, with a token made through the admin one."""
    import httpx

    (tmp_path / "database_url").write_text(pg_db_url + "\n")
    admin = "lut_admin_from_secret_" + os.urandom(6).hex()
    (tmp_path / "admin_token").write_text(admin + "\n")
    port = free_port()
    env = compose_environment({
        "DATABASE_URL": "", "DATABASE_URL_FILE": str(tmp_path / "database_url"),
        "LUT_ADMIN_TOKEN": "", "LUT_ADMIN_TOKEN_FILE": str(tmp_path / "admin_token"),
        "LUT_HOST": "127.0.0.1", "LUT_PORT": str(port),
    })
    c = Container(env, tmp_path / "server.log")
    containers.append(c)
    url = f"http://127.0.0.1:{port}"
    c.wait_healthy(url)
    name = _example_env()["LUT_AGENT_NAME"]
    body = {"role": "agent", "device": name, "device_class": _example_env()["LUT_AGENT_DEVICE"], "note": "deploy test"}
    assert httpx.post(url + "/api/v1/tokens", json=body, timeout=10).status_code == 401
    r = httpx.post(url + "/api/v1/tokens", json=body, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert r.status_code == 200, r.text
    token = r.json()["token"]

    # The CPU agent as compose runs it; only the server URL (compose's service name) is swapped,
    # and --exit-when-idle added so that it stops once it finds the queue empty.
    agent_env = compose_environment({"LUT_SERVER": url, "LUT_TOKEN": token, "XDG_CACHE_HOME": str(tmp_path)},
                                    service="agent")
    cmd = compose_command("agent", REPO / "deploy" / "agent" / "Dockerfile") + ["--exit-when-idle", "--poll", "0.2"]
    assert cmd[:2] == ["profiler-agent", "run"], cmd
    base = {k: v for k, v in os.environ.items() if not k.startswith("LUT_")}
    base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    base["PYTHONPATH"] = str(REPO)
    a = subprocess.run(cmd, env={**base, **agent_env}, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert a.returncode == 0, a.stdout + a.stderr
    devices = httpx.get(url + "/api/v1/devices", timeout=10).json()
    listed = devices if isinstance(devices, list) else devices.get("devices", [])
    mine = [d for d in listed if d.get("name") == name]
    assert mine and mine[0]["device_class"] == agent_env["LUT_DEVICE"], devices


def _run_briefly(env: Dict[str, str], tmp_path: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LUT_", "DATABASE_URL"))}
    base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run(container_command(), cwd=str(tmp_path), env={**base, **env}, capture_output=True,
                          text=True, timeout=timeout)


def test_missing_database_url_is_a_clear_error(tmp_path: Path) -> None:
    r = _run_briefly({}, tmp_path)
    assert r.returncode == 64 and "DATABASE_URL is not set" in r.stderr


def test_unreadable_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    r = _run_briefly({"DATABASE_URL_FILE": str(tmp_path / "nope")}, tmp_path)
    assert r.returncode == 64 and "DATABASE_URL_FILE" in r.stderr and "not a readable file" in r.stderr


def test_unreachable_database_fails_after_the_wait(tmp_path: Path) -> None:
    port: Optional[int] = free_port()  # nothing listens there
    r = _run_briefly({"DATABASE_URL": f"postgresql://lut:x@127.0.0.1:{port}/lut", "LUT_DB_WAIT_S": "1"}, tmp_path)
    assert r.returncode != 0 and "database not reachable after 1s" in r.stderr
