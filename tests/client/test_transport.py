"""Retries, backoff and timeouts against a real HTTP server that fails on purpose."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Union

import pytest

from search_client import ServerError, TransportError
from search_client.transport import Transport


class Script:
    """Statuses to answer, in order (the last repeats); 'slow' sleeps past the client timeout."""

    url: str  # set once the server listens

    def __init__(self, steps: List[Union[int, str]]) -> None:
        self.steps = steps
        self.seen: List[str] = []


@pytest.fixture()
def flaky():
    script = Script([200])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # keep test output clean
            pass

        def _answer(self):
            n = len(script.seen)
            script.seen.append(f"{self.command} {self.path} {self.headers.get('Authorization')}")
            step = script.steps[min(n, len(script.steps) - 1)]
            if step == "slow":
                time.sleep(0.5)
                step = 200
            body = json.dumps({"ok": True, "n": n} if step == 200 else {"detail": f"status {step}"}).encode()
            self.send_response(int(step))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    script.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield script
    srv.shutdown()
    srv.server_close()


def _transport(url, **kw):
    sleeps: List[float] = []
    kw.setdefault("backoff", 0.01)
    return Transport(url, token="tok", sleep=sleeps.append, **kw), sleeps


def test_retries_transient_statuses_then_succeeds(flaky):
    flaky.steps = [503, 502, 504, 200]
    t, sleeps = _transport(flaky.url, retries=3, backoff=0.1)
    assert t.request("POST", "/lookup", json={}) == {"ok": True, "n": 3}
    assert len(flaky.seen) == 4 and t.round_trips == 4
    assert flaky.seen[0] == "POST /api/v1/lookup Bearer tok"
    # exponential: 0.1, 0.2, 0.4, each jittered down by at most half (lutcore.rest.RetryPolicy)
    for s, base in zip(sleeps, (0.1, 0.2, 0.4)):
        assert 0.5 * base <= s <= base


def test_gives_up_after_retries(flaky):
    flaky.steps = [503]
    t, sleeps = _transport(flaky.url, retries=2)
    with pytest.raises(TransportError, match=r"HTTP 503 service unavailable \(status 503\).*after 3 attempts"):
        t.request("GET", "/targets")
    assert len(flaky.seen) == 3 and len(sleeps) == 2


def test_client_errors_are_not_retried(flaky):
    flaky.steps = [404]
    t, _ = _transport(flaky.url, retries=3)
    with pytest.raises(ServerError, match="HTTP 404.*unknown target") as e:
        t.request("POST", "/cost-matrix", json={})
    assert e.value.status == 404 and e.value.detail == "status 404" and len(flaky.seen) == 1


def test_server_fault_is_not_retried(flaky):
    flaky.steps = [500, 200]
    t, sleeps = _transport(flaky.url, retries=3)
    with pytest.raises(ServerError, match="HTTP 500") as e:
        t.request("GET", "/targets")
    assert e.value.status == 500 and len(flaky.seen) == 1 and not sleeps


def test_timeout_is_retried(flaky):
    flaky.steps = ["slow", 200]
    t, _ = _transport(flaky.url, retries=1, timeout=0.1)
    assert t.request("GET", "/targets")["n"] == 1


def test_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    t, sleeps = _transport(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(TransportError, match="ConnectError"):
        t.request("GET", "/targets")
    assert len(sleeps) == 2
