"""Edge middleware: a request body limit and one access-log line per request.

Both are pure ASGI so they see the raw byte stream: the limit answers 413 from ``Content-Length``
before a byte is read, and counts the bytes of chunked bodies as they arrive, so an oversized body
never sits in memory whole.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lut_server.config import Settings

ACCESS_LOGGER = "lut_server.access"
_SHOWN_CHARS = 8  # of a bearer token, in the access log: enough to tell tokens apart, never the secret
_MIN_SHOWN_LEN = 24  # shorter tokens are not shown at all (8 chars would be too much of them)


def _limit_text(limit_bytes: int) -> str:
    return f"request body larger than the {limit_bytes / 1048576:g} MiB limit (lut serve --max-body-mb)"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit, so the app stops reading it."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(status_code=413, detail=_limit_text(limit_bytes))


class BodyLimit:
    """413 for a request body over ``limit_bytes``, decided before the body is read into memory."""

    def __init__(self, app: ASGIApp, limit_bytes: int) -> None:
        self.app = app
        self.limit = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _send_413(send, self.limit)
            return
        seen = 0
        over = False  # the body passed the limit: whatever the app answers becomes our 413
        answered = False  # a response start went out (the app's, or our 413)

        async def counted_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise BodyTooLarge(self.limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if over:  # inner layers may turn our exception into a 400 or a 500: answer 413 instead
                if not answered:
                    answered = True
                    await _send_413(send, self.limit)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await _send_413(send, self.limit)


def _content_length(scope: Scope) -> Optional[int]:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, limit_bytes: int) -> None:
    body = json.dumps({"detail": _limit_text(limit_bytes)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestObserver:
    """Pure ASGI (no BaseHTTPMiddleware, which streams every response through a task group): calls
    ``observe(scope, status, seconds)`` once per HTTP request when it ends. The access log and the
    request histogram both hang on it."""

    def __init__(self, app: ASGIApp, observe: Callable[[Scope, int, float], None]) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500  # what the server error handler answers when the app raises before responding

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            self.observe(scope, status, time.perf_counter() - t0)


class AccessLog(RequestObserver):
    """One line per request on ``lut_server.access``: method, path, status, principal, duration."""

    def __init__(self, app: ASGIApp, logger: Optional[logging.Logger] = None) -> None:
        super().__init__(app, self._line)
        self.log = logger or logging.getLogger(ACCESS_LOGGER)

    def _line(self, scope: Scope, status: int, seconds: float) -> None:
        self.log.info("%s %s %d %s %.1fms", scope.get("method", "-"), scope.get("path", "-"), status,
                      principal_label(scope), 1e3 * seconds)


def principal_label(scope: Scope) -> str:
    """Who called, without a database lookup: the role a dependency left in ``request.state.principal``
    if any, and the first characters of the bearer token (never more). ``-`` for anonymous calls."""
    token = _bearer(scope)
    shown = ""
    if token is not None:
        shown = token[:_SHOWN_CHARS] + "..." if len(token) >= _MIN_SHOWN_LEN else "short-token"
    role: Any = getattr(scope.get("state", {}).get("principal"), "role", None)
    if role and shown:
        return f"{role}:{shown}"
    return str(role or shown or "-")


def _bearer(scope: Scope) -> Optional[str]:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            secret = secret.strip()
            return secret if scheme.lower() == "bearer" and secret else None
    return None


class _BufferedStderr(logging.Handler):
    """Access lines to whatever ``sys.stderr`` is at the time (test runners swap it), written in batches.

    ``logging.StreamHandler`` with ``%(asctime)s`` costs about 60 us a request (a strftime, a write
    and a flush each): a third of what the cost matrix's hot path costs in all. Here a line is the
    message behind a timestamp made once a second, and a daemon thread writes what gathered every
    ``FLUSH_S``, so a line is on stderr at most that long after its request ended."""

    FLUSH_S = 0.1

    def __init__(self) -> None:
        super().__init__()
        self._lines: List[Tuple[Any, str]] = []  # (the stderr at the time, the line)
        self._second = -1
        self._stamp = ""
        threading.Thread(target=self._writer, name="access-log", daemon=True).start()
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            second = int(record.created)
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._lines.append((sys.stderr, f"{self._stamp},{int(record.msecs):03d} {record.getMessage()}\n"))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()  # the handler's own lock, which ``handle`` holds around ``emit``
        try:
            lines, self._lines = self._lines, []
        finally:
            self.release()
        streams: Dict[int, Tuple[Any, List[str]]] = {}
        for stream, line in lines:
            streams.setdefault(id(stream), (stream, []))[1].append(line)
        for stream, text in streams.values():
            try:
                stream.write("".join(text))
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: the lines are lost, the server goes on
                pass

    def _writer(self) -> None:
        while True:
            time.sleep(self.FLUSH_S)
            self.flush()


def _configure_access_logger() -> logging.Logger:
    """Lines to stderr, beside uvicorn's, unless the embedding process configured the logger itself."""
    log = logging.getLogger(ACCESS_LOGGER)
    if not log.handlers:
        log.addHandler(_BufferedStderr())
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def install_middleware(app: Any, settings: Settings) -> None:
    """The body limit inside the access log, so that 413s are logged too."""
    app.add_middleware(BodyLimit, limit_bytes=settings.max_body_bytes)
    if settings.access_log:
        app.add_middleware(AccessLog, logger=_configure_access_logger())
