"""Pytest plugin: real databases and real `lut serve` processes for every application's tests.

Fixtures
- ``pg_url`` (session): a PostgreSQL URL with CREATEDB rights ($LUT_TEST_PG_URL, else the local
  cluster started by .ci/start-postgres.sh); skips the test with the reason when none can be had.
- ``pg_db_url``: a fresh, empty PostgreSQL database for one test (dropped afterwards).
- ``db_url``: parametrized over ``sqlite`` (a file in tmp_path) and ``postgres`` (``pg_db_url``).
- ``start_server``: factory ``start_server(db_url=None, read_token_required=False) -> LiveServer``
  running ``lut serve`` (uvicorn) in a subprocess on a free 127.0.0.1 port.
- ``live_server``: one server over a fresh SQLite file; ``live_server_pg``: over a fresh PostgreSQL db.

A ``LiveServer`` has ``.url``, ``.api`` (``url + "/api/v1"``), ``.db_url``, ``.admin_token`` and
``.agent_token(device_name, device_class="*")``,
``.search_token()`` and ``.read_token()`` which create tokens through the REST API.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


# -- PostgreSQL -----------------------------------------------------------------------------------
def _pg_base_url() -> str:
    """A PostgreSQL URL, or raise RuntimeError saying why there is none."""
    url = os.environ.get("LUT_TEST_PG_URL")
    if url:
        return url
    script = REPO / ".ci" / "start-postgres.sh"
    if not shutil.which("pg_ctlcluster") and not shutil.which("apt-get"):
        raise RuntimeError("no LUT_TEST_PG_URL and no local PostgreSQL (pg_ctlcluster not found)")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise RuntimeError("no LUT_TEST_PG_URL, and starting the local cluster needs root; "
                           "run `eval \"$(.ci/start-postgres.sh)\"` first")
    try:
        out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300, check=True).stdout
    except (subprocess.SubprocessError, OSError) as e:
        err = getattr(e, "stderr", "") or ""
        raise RuntimeError(f"could not start PostgreSQL with {script}: {e} {err[-500:]}") from None
    for line in out.splitlines():
        if line.startswith("export LUT_TEST_PG_URL="):
            url = line.split("=", 1)[1].strip().strip("'\"")
            os.environ["LUT_TEST_PG_URL"] = url  # subprocesses and later sessions reuse it
            return url
    raise RuntimeError(f"{script} printed no LUT_TEST_PG_URL line")


def _psycopg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    head, _, tail = url.rpartition("/")
    query = ""
    if "?" in tail:
        query = "?" + tail.split("?", 1)[1]
    return f"{head}/{name}{query}"


def create_pg_database(base_url: str) -> str:
    """CREATE DATABASE with a unique name; returns its SQLAlchemy URL."""
    import psycopg

    name = "lut_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_psycopg_dsn(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(base_url, name)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def drop_pg_database(base_url: str, url: str) -> None:
    import psycopg

    name = url.rpartition("/")[2].split("?")[0]
    try:
        with psycopg.connect(_psycopg_dsn(base_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # a leftover test database is harmless


@pytest.fixture(scope="session")
def pg_url() -> str:
    try:
        return _pg_base_url()
    except RuntimeError as e:
        pytest.skip(f"PostgreSQL unavailable: {e}")


@pytest.fixture
def pg_db_url(pg_url: str) -> Iterator[str]:
    url = create_pg_database(pg_url)
    yield url
    drop_pg_database(pg_url, url)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lut.db'}"
    return str(request.getfixturevalue("pg_db_url"))


# -- live servers --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra or {})
    return env


class LiveServer:
    """A `lut serve` subprocess; stop() terminates it."""

    def __init__(self, db_url: str, log_dir: Path, read_token_required: bool = False,
                 admin_token: Optional[str] = None) -> None:
        self.db_url = db_url
        # servers on one database share LUT_ADMIN_TOKEN: a different one would revoke it (rotation)
        self.admin_token = admin_token or "lut_admin_" + secrets.token_urlsafe(18)
        self.read_token_required = read_token_required
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self.url + "/api/v1"
        self.log_path = log_dir / f"lut-serve-{self.port}.log"
        cmd = [sys.executable, "-m", "lutcore", "serve", "--db", db_url, "--host", "127.0.0.1",
               "--port", str(self.port)]
        if read_token_required:
            cmd.append("--read-token-required")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=self._log, stderr=subprocess.STDOUT,
                                     env=server_env({"LUT_ADMIN_TOKEN": self.admin_token}))
        self._wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _wait(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lut serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"lut serve did not answer /healthz within {START_TIMEOUT_S}s:\n{self.log()}")

    def headers(self, token: Optional[str] = None) -> Dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def _token(self, role: str, device: Optional[str] = None, device_class: Optional[str] = None) -> str:
        import httpx

        r = httpx.post(self.api + "/tokens", json={"role": role, "device": device, "device_class": device_class,
                                                   "note": "test"}, headers=self.headers(), timeout=30)
        r.raise_for_status()
        return str(r.json()["token"])

    def agent_token(self, device_name: str, device_class: str = "*") -> str:
        """A new agent token that writes only for board ``device_name`` and targets of ``device_class``
        ('*': any class, for tests that are not about authorization)."""
        return self._token("agent", device_name, device_class)

    def search_token(self) -> str:
        return self._token("search")

    def read_token(self) -> str:
        return self._token("read")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def __repr__(self) -> str:
        return f"LiveServer({self.url}, db={self.db_url})"


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``start_server(db_url=None, read_token_required=False)``; None = a fresh SQLite file."""
    started: List[LiveServer] = []
    admin_of: Dict[str, str] = {}

    def start(db_url: Optional[str] = None, read_token_required: bool = False) -> LiveServer:
        d = tmp_path_factory.mktemp("lutserver")
        url = db_url or f"sqlite:///{d / 'lut.db'}"
        last: Optional[Exception] = None
        for _ in range(3):  # the free port may be taken between probing and binding
            try:
                srv = LiveServer(url, d, read_token_required, admin_of.get(url))
            except RuntimeError as e:
                last = e
                if "address already in use" not in str(e).lower():
                    raise
                continue
            started.append(srv)
            admin_of[url] = srv.admin_token
            return srv
        raise RuntimeError(f"could not start lut serve: {last}")

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def live_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server()


@pytest.fixture
def live_server_pg(start_server: Callable[..., LiveServer], pg_db_url: str) -> LiveServer:
    return start_server(pg_db_url)
