"""The server's edge: request body limit (413), access log, /metrics under the read rule, offline docs."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from lut_server.app import create_app
from lut_server.config import Settings
from lut_server.middleware import ACCESS_LOGGER
from tests.live_server import REPO, free_port, server_env
from tests.server.helpers import TARGET, batch, conv, item

MIB = 1024 * 1024


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body without Content-Length (httpx sends it chunked): only counting the bytes can stop it."""
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


def _small_app(tmp_path: Path, mb: float) -> TestClient:
    return TestClient(create_app(Settings(db_url=f"sqlite:///{tmp_path / 'e.db'}", max_body_mb=mb)))


# -- body limit ------------------------------------------------------------------------------------
def test_body_limit_in_process(tmp_path: Path) -> None:
    with _small_app(tmp_path, 0.25) as c:
        big = b'{"target": "' + b"x" * (MIB // 2) + b'"}'
        r = c.post("/api/v1/lookup", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "0.25 MiB" in r.json()["detail"]
        r = c.post("/api/v1/lookup", content=_chunks(MIB // 2), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "0.25 MiB" in r.json()["detail"]
        # under the limit, chunked or not, the route answers for itself
        r = c.post("/api/v1/lookup", content=_chunks(1000), headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert c.post("/api/v1/lookup", json={"target": TARGET, "keys": ["k"]}).status_code == 200


def test_body_limit_default_8_mib_on_a_real_server(start_server, db_url: str) -> None:
    srv = start_server(db_url)
    api = srv.api
    agent = {"Authorization": f"Bearer {srv.agent_token('xavier-01')}"}
    body = batch([item(conv(16))], device="xavier-01")
    body["fingerprint"] = {"blob": "y" * (9 * MIB)}  # the 20 MB batch of issue 13, scaled to 9 MiB
    r = httpx.post(api + "/measurements", json=body, headers=agent, timeout=60)
    assert r.status_code == 413 and "8 MiB" in r.json()["detail"]
    r = httpx.post(api + "/measurements", content=_chunks(9 * MIB), timeout=60,
                   headers={**agent, "content-type": "application/json"})
    assert r.status_code == 413 and "8 MiB" in r.json()["detail"]
    # nothing of the refused batches was stored, and an ordinary one still goes through
    assert httpx.get(api + "/export", timeout=30).json()["targets"] == []
    ok = httpx.post(api + "/measurements", json=batch([item(conv(16))], device="xavier-01"), headers=agent)
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


def test_body_limit_from_environment(start_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUT_MAX_BODY_MB", "0.5")
    srv = start_server()
    r = httpx.post(srv.api + "/lookup", content=b"[" + b" " * MIB + b"]", timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and "0.5 MiB" in r.json()["detail"]
    r = httpx.post(srv.api + "/lookup", json={"target": TARGET, "keys": ["k" * 1000] * 200}, timeout=30)
    assert r.status_code != 413


def test_max_body_flag_reaches_every_worker(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "lutcore", "serve", "--db", f"sqlite:///{tmp_path / 'w.db'}",
                             "--port", str(port), "--workers", "2", "--max-body-mb", "0.25", "--no-access-log"],
                            cwd=str(REPO), env=server_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        statuses = set()
        for _ in range(8):  # new connections: both workers answer some of them
            r = httpx.post(url + "/api/v1/lookup", content=b" " * (MIB // 2), timeout=30,
                           headers={"content-type": "application/json", "connection": "close"})
            statuses.add((r.status_code, "0.25 MiB" in r.text))
        assert statuses == {(413, True)}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert "GET /healthz" not in (tmp_path / "serve.log").read_text(errors="replace")  # --no-access-log


# -- access log ------------------------------------------------------------------------------------
def test_access_log_line_per_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with _small_app(tmp_path, 8) as c:
        log = logging.getLogger(ACCESS_LOGGER)
        log.addHandler(caplog.handler)  # the logger does not propagate (it has its own handler)
        try:
            admin = c.post("/api/v1/tokens", json={"role": "read"})  # anonymous: 401
            assert admin.status_code == 401
            secret = "lut_" + "S" * 40
            c.get("/api/v1/targets", headers={"Authorization": f"Bearer {secret}"})
            c.get("/api/v1/targets", headers={"Authorization": "Bearer shortsecret"})
        finally:
            log.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 3, lines
    assert re.fullmatch(r"POST /api/v1/tokens 401 - \d+\.\dms", lines[0]), lines[0]
    assert re.fullmatch(r"GET /api/v1/targets 401 lut_SSSS\.\.\. \d+\.\dms", lines[1]), lines[1]
    assert re.fullmatch(r"GET /api/v1/targets 401 short-token \d+\.\dms", lines[2]), lines[2]
    assert "S" * 5 not in "\n".join(lines) and "shortsecret" not in "\n".join(lines)


def test_access_log_of_a_real_server(live_server) -> None:
    token = live_server.agent_token("xavier-01")
    r = httpx.post(live_server.api + "/measurements", json=batch([item(conv(16))], device="xavier-01"),
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    httpx.post(live_server.api + "/lookup", content=b" " * (9 * MIB), timeout=60,
               headers={"content-type": "application/json"})
    time.sleep(0.3)  # the line is written after the response went out
    text = live_server.log()
    line = r"POST /api/v1/measurements 200 (agent:)?" + re.escape(token[:8]) + r"\.\.\. \d+\.\dms"
    assert re.search(line, text), text
    assert re.search(r"POST /api/v1/lookup 413 - \d+\.\dms", text), text
    assert token[8:] not in text and live_server.admin_token[8:] not in text
    assert '"POST /api/v1' not in text  # uvicorn's own access line ("... HTTP/1.1" 200) is off


# -- /metrics follows the read rule -------------------------------------------------------------
def test_metrics_needs_a_token_when_reads_do(start_server, db_url: str) -> None:
    srv = start_server(db_url, read_token_required=True)
    r = httpx.get(srv.url + "/metrics")
    assert r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer"
    assert httpx.get(srv.url + "/metrics", headers={"Authorization": "Bearer lut_unknown"}).status_code == 401
    r = httpx.get(srv.url + "/metrics", headers={"Authorization": f"Bearer {srv.read_token()}"})
    assert r.status_code == 200 and "lut_http_request_seconds" in r.text
    agent = srv.agent_token("xavier-01")
    assert httpx.get(srv.url + "/metrics", headers={"Authorization": f"Bearer {agent}"}).status_code == 200


def test_metrics_open_when_reads_are(live_server) -> None:
    r = httpx.get(live_server.url + "/metrics")
    assert r.status_code == 200 and "lut_jobs_claimed_total" in r.text


# -- offline docs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_another_host(live_server, page: str) -> None:
    r = httpx.get(live_server.url + page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), html  # no absolute or protocol-relative URL
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets), assets
    expected = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for a in assets:
        assert a.startswith("/static/docs/"), a
        got = httpx.get(live_server.url + a)
        assert got.status_code == 200 and len(got.content) > 1000, a
        assert expected[Path(a).suffix] in got.headers["content-type"], (a, got.headers["content-type"])
    spec = re.search(r"""(?:url: '|spec-url=")([^'"]+)""", html)
    assert spec and httpx.get(live_server.url + spec.group(1)).json()["openapi"].startswith("3.")


def test_swagger_bundle_reads_openapi_3_1(tmp_path: Path) -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI reads from version 5 on; 4.x would show a blank error."""
    with _small_app(tmp_path, 8) as c:
        assert c.get("/openapi.json").json()["openapi"].startswith("3.1")
        js = c.get("/static/docs/swagger-ui-bundle.js").text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', js)
    assert version and int(version.group(1)) >= 5, version
