"""The cost matrix's hot path: a matrix whose version was checked moments ago, served without FastAPI.

A search job's training loop and a fleet of them ask for the same matrices over and over. The route
(``api.spaces.cost_matrix``) resolves the space, reads the LUT version and calibration stamp and
serves pre-rendered bytes; this ASGI layer in front of it answers a request whose words name a
matrix whose version was checked within ``matrix_cache.STALE_S`` (by the worker's
``MatrixRefresher``, every ``FRESH_S``, or by the route) from those bytes directly: no validation
models, no dependency injection, no database. Anything else (a definition instead of a
name, an unknown field, a server that requires a token to read, a stale or absent entry) goes to
the route unchanged.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, List, Optional, Tuple

from lut_server.matrix_cache import Alias, MatrixCache, alias, etag_matches

PATH = "/api/v1/cost-matrix"
READS = {PATH, "/api/v1/lookup"}  # POSTs that write nothing
_ROUTE = SimpleNamespace(path=PATH)  # the metrics label the route would have given
_FIELDS = {"space", "target", "resolution", "metric", "missing"}
_MODES = ("report", "predict")  # schemas.Missing; any other value goes to the route (its 422)


def alias_of(body: bytes) -> Optional[Alias]:
    """The request words, when the body is exactly what the fast path may answer."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not set(doc) <= _FIELDS or not {"space", "target"} <= set(doc):
        return None
    space, target = doc["space"], doc["target"]
    res, metric, missing = doc.get("resolution"), doc.get("metric", "median_ms"), doc.get("missing", "report")
    if not (isinstance(space, str) and isinstance(target, str) and isinstance(metric, str)):
        return None
    if (res is not None and not isinstance(res, str)) or missing not in _MODES:
        return None
    return alias(target, space, res, metric, missing)


class MatrixFastPath:
    def __init__(self, app: Any, cache: MatrixCache, enabled: bool = True) -> None:
        self.app = app
        self.cache = cache
        self.enabled = enabled

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD") and scope["path"] not in READS:
            await self.app(scope, receive, self._forgetting(send))
            return
        if not (self.enabled and scope["method"] == "POST" and scope["path"] == PATH):
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive)
        alias = None if more else alias_of(body)
        hit = None if alias is None else self.cache.recent(alias)
        if hit is None:
            await self.app(scope, _replay(body, more, receive), send)
            return
        data, etag = hit
        scope["route"] = _ROUTE
        inm = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None)
        headers = [(b"etag", etag.encode("latin-1")), (b"cache-control", b"no-cache")]
        if etag_matches(inm, etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


    def _forgetting(self, send: Any) -> Any:
        """A write answered by this worker: its own matrices are checked again before they are served
        (other workers see it within a refresh). Done as the answer starts, before the client can ask."""

        async def forgetting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.cache.forget_checks()
            await send(message)

        return forgetting


async def _read(receive: Any, limit: int = 64 * 1024) -> Tuple[bytes, bool]:
    """The body, up to ``limit`` bytes (a matrix request is a few hundred); ``more``: it went past."""
    parts: List[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), True
        chunk = message.get("body", b"")
        parts.append(chunk)
        size += len(chunk)
        if not message.get("more_body") or size > limit:
            return b"".join(parts), bool(message.get("more_body"))


def _replay(body: bytes, more: bool, receive: Any) -> Any:
    """A receive that hands the downstream app what was already read, then the rest."""
    sent = [False]

    async def replay() -> Any:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
