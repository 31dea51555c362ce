"""Auth rules over real HTTP: missing token 401, other device 403, revoked 403, read tokens."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.live_server import REPO, server_env
from tests.server.helpers import TARGET, batch, conv, item


def _bearer(t: str) -> dict:
    return {"Authorization": f"Bearer {t}"}


def test_write_auth_rules(live_server) -> None:
    api = live_server.api
    body = batch([item(conv(16))], device="xavier-01")
    r = httpx.post(api + "/measurements", json=body)
    assert r.status_code == 401 and "agent token" in r.json()["detail"]
    assert httpx.post(api + "/measurements", json=body, headers=_bearer("lut_bogus")).status_code == 401
    assert httpx.post(api + "/measurements", json=body, headers={"Authorization": "Basic x"}).status_code == 401

    mine = live_server.agent_token("xavier-01")
    other = live_server.agent_token("xavier-02")
    r = httpx.post(api + "/measurements", json=body, headers=_bearer(other))
    assert r.status_code == 403 and "xavier-02" in r.json()["detail"]
    r = httpx.post(api + "/devices", json={"name": "xavier-01", "device_class": "xavier"}, headers=_bearer(other))
    assert r.status_code == 403
    assert httpx.post(api + "/measurements", json=body, headers=_bearer(mine)).status_code == 200

    claim = {"target": TARGET, "n": 1}
    assert httpx.post(api + "/jobs/claim", json=claim).status_code == 401
    reader = live_server.read_token()
    assert httpx.post(api + "/jobs/claim", json=claim, headers=_bearer(reader)).status_code == 403

    # agent tokens cannot manage tokens or import
    assert httpx.post(api + "/tokens", json={"role": "admin"}, headers=_bearer(mine)).status_code == 403
    assert httpx.post(api + "/import", json={"schema": "nas-lut/1", "targets": []},
                      headers=_bearer(mine)).status_code == 403

    # revoke through the CLI, straight on the database
    tokens = httpx.get(api + "/tokens", headers=live_server.headers()).json()
    tid = next(t["id"] for t in tokens if t["device"] == "xavier-01")
    out = subprocess.run([sys.executable, "-m", "lutcore", "token", "revoke", str(tid), "--db", live_server.db_url],
                         capture_output=True, text=True, env=server_env(), cwd=str(REPO))
    assert out.returncode == 0, out.stderr
    r = httpx.post(api + "/measurements", json=batch([item(conv(24))]), headers=_bearer(mine))
    assert r.status_code == 403 and "revoked" in r.json()["detail"]
    assert "secret" not in str(tokens) and all("token" not in t for t in tokens)


def test_reads_open_by_default(live_server) -> None:
    r = httpx.post(live_server.api + "/lookup", json={"target": TARGET, "keys": ["x"]})
    assert r.status_code == 200 and r.json()["missing"] == ["x"]


def test_read_token_required(start_server) -> None:
    srv = start_server(read_token_required=True)
    look = {"target": TARGET, "keys": [conv(16).key]}
    r = httpx.post(srv.api + "/lookup", json=look)
    assert r.status_code == 401
    assert httpx.get(srv.api + "/status").status_code == 401
    assert httpx.post(srv.api + "/lookup", json=look, headers=_bearer(srv.read_token())).status_code == 200
    assert httpx.get(srv.url + "/healthz").status_code == 200
    assert httpx.get(srv.url + "/metrics").status_code == 401  # /metrics follows the read rule (issue 13)


def test_lut_audit_lists_admin_actions(live_server) -> None:
    live_server.agent_token("xavier-01", "xavier")
    tok = live_server.agent_token("xavier-02", "xavier")
    tid = next(t["id"] for t in httpx.get(live_server.api + "/tokens", headers=live_server.headers()).json()
               if t["device"] == "xavier-02")
    assert httpx.delete(f"{live_server.api}/tokens/{tid}", headers=live_server.headers()).status_code == 200
    base = [sys.executable, "-m", "lutcore", "audit"]
    out = subprocess.run(base + ["--server", live_server.url, "--token", live_server.admin_token, "--json"],
                         capture_output=True, text=True, env=server_env(), cwd=str(REPO))
    assert out.returncode == 0, out.stderr
    rows = __import__("json").loads(out.stdout)
    assert [r["action"] for r in rows] == ["token.revoke", "token.create", "token.create"]
    assert rows[0]["subject"] == f"token {tid}" and rows[0]["actor"].startswith("admin:")
    out = subprocess.run(base + ["--db", live_server.db_url, "--action", "token.revoke"], capture_output=True,
                         text=True, env=server_env(), cwd=str(REPO))
    assert out.returncode == 0 and "token.revoke" in out.stdout and "token.create" not in out.stdout, out.stderr
    out = subprocess.run(base + ["--server", live_server.url, "--token", tok], capture_output=True, text=True,
                         env=server_env(), cwd=str(REPO))
    assert out.returncode == 1 and "403" in out.stderr and "Traceback" not in out.stderr


def test_lut_serve_refuses_a_weak_admin_token(tmp_path) -> None:
    cmd = [sys.executable, "-m", "lutcore", "serve", "--db", f"sqlite:///{tmp_path / 'w.db'}", "--port", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=server_env({"LUT_ADMIN_TOKEN": "secret"}),
                         cwd=str(REPO), timeout=60)
    assert out.returncode == 1 and "LUT_ADMIN_TOKEN refused" in out.stderr and "24" in out.stderr
    assert "Traceback" not in out.stderr
