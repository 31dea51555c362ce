"""The search client's HTTP to the LUT server: the shared ``lutcore.rest`` client (one retry and
error policy), with errors raised as the search client's own classes.

Every request the client sends is a read or idempotent (``POST /spaces`` never duplicates a job),
so each one is declared safe to retry.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import httpx

from lutcore.rest import RestClient, RestError, RetryPolicy, ServerFault, Unavailable
from search_client.errors import ServerError, TransportError

HINTS = {
    401: "no or invalid token: pass token=... to LUTClient",
    403: "the token may not do this",
    404: "unknown target or space?",
}


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
        self.url = url.rstrip("/")
        self._rest = RestClient(url, token, timeout=timeout, sleep=sleep, hints=HINTS, user_agent="search-client",
                                policy=RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff),
                                transport=transport)

    @property
    def round_trips(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._rest.round_trips

    def close(self) -> None:
        self._rest.close()

    def request(self, method: str, path: str, json: Any = None, params: Optional[Dict[str, Any]] = None) -> Any:
        """The decoded JSON body; ServerError on an error status or a body that is not JSON, TransportError
        when every attempt failed to get an answer."""
        try:
            return self._rest.request(method, path, json=json, params=params, idempotent=True)
        except RestError as e:
            unreachable = isinstance(e, Unavailable) and not isinstance(e, ServerFault)
            cls = TransportError if unreachable else ServerError
            raise cls(str(e), e.status, e.detail, e.method, e.url) from None
