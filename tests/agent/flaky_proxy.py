"""A real HTTP proxy in front of a live LUT server that can be told to fail, for outage tests.

Not a mock: requests that pass go to the real server. Faults are the ones a board sees:
the server answering 503, and the nastiest one for exactly-once delivery, a request that
reached the server and was stored but whose answer never came back (``lose_answers``).
"""

from __future__ import annotations

import collections
import http.server
import threading
from typing import Counter, Optional, Set

import httpx


class FlakyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.fail_next = 0  # answer this many upcoming requests with 503 without forwarding
        self.fail_paths: Set[str] = set()  # requests whose path contains one of these get 503
        self.lose_answers = 0  # forward this many requests, then answer 503 as if the reply was lost
        self.lose_path = ""  # ...counting only requests whose path contains this
        self.seen: Counter[str] = collections.Counter()
        self.forwarded: Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, content = proxy._route(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address is (str, int)
        return f"http://{host}:{port}"

    def _route(self, method: str, path: str, headers: dict, body: bytes):
        key = f"{method} {path.split('?')[0]}"
        unavailable = (503, {"Content-Type": "application/json"}, b'{"detail": "proxy: server down"}')
        with self._lock:
            self.seen[key] += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return unavailable
            if any(p in path for p in self.fail_paths):
                return unavailable
            lose = self.lose_answers > 0 and self.lose_path in path
            if lose:
                self.lose_answers -= 1
        fwd = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        try:
            resp = self._client.request(method, self.upstream + path, headers=fwd, content=body)
        except httpx.TransportError:  # the upstream server is down (being restarted)
            return 502, {"Content-Type": "application/json"}, b'{"detail": "proxy: upstream unreachable"}'
        with self._lock:
            self.forwarded[key] += 1
        if lose:
            return unavailable
        ctype = resp.headers.get("content-type", "application/json")
        return resp.status_code, {"Content-Type": ctype}, resp.content

    def start(self) -> FlakyProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> FlakyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
