"""HTTP to the LUT server: timeouts, and retries with exponential backoff on transient failures.

Every request the client sends is a read or idempotent (``POST /spaces`` never duplicates a job),
so retrying one is safe.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Dict, Optional

import httpx

from search_client.errors import ServerError, TransportError

RETRY_STATUS = (502, 503, 504)
API = "/api/v1"


class Transport:
    """A JSON-over-HTTP session with the server; ``retries`` extra attempts after the first."""

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries={retries} must be >= 0")
        self.url = url.rstrip("/")
        base = self.url if self.url.endswith(API) else self.url + API
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self.round_trips = 0
        self._http = httpx.Client(base_url=base, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (0-based): base * 2^attempt, capped, with +-25% jitter."""
        d = min(self.max_backoff, self.backoff * (2**attempt))
        return d * random.uniform(0.75, 1.25)

    def request(self, method: str, path: str, json: Any = None, params: Optional[Dict[str, Any]] = None) -> Any:
        """The decoded JSON body; ServerError on a 4xx/5xx, TransportError when every attempt failed."""
        last: Optional[str] = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.delay(attempt - 1))
            try:
                self.round_trips += 1
                r = self._http.request(method, path, json=json, params=params)
            except (httpx.TransportError, httpx.TimeoutException) as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            if r.status_code >= 400:
                raise ServerError(_describe(method, path, r), r.status_code)
            try:
                return r.json()
            except ValueError:
                body = r.text[:200]
                raise ServerError(f"{method} {path}: the server sent a body that is not JSON: {body!r}") from None
        raise TransportError(
            f"{method} {self._http.base_url}{path} failed after {self.retries + 1} attempts; last error: {last}"
        )


def _describe(method: str, path: str, r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text
    hint = {
        401: " (no or invalid token: pass token=... to LUTClient)",
        403: " (the token may not do this)",
        404: " (unknown target or space?)",
    }.get(r.status_code, "")
    return f"{method} {path}: HTTP {r.status_code}{hint}: {str(detail)[:500]}"
