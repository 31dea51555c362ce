"""``RestClient``: JSON over HTTP to the LUT server under the one retry policy (policy.py) and the
one error model (errors.py). The agent, the search client and the ``lut`` command all call the
server through it; each adds only its typed endpoint methods and the hints its users need.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Dict, Mapping, Optional

import httpx

from lutcore.rest.errors import (
    AuthError,
    BadResponse,
    Rejected,
    RestError,
    ServerFault,
    Unavailable,
    detail_of,
)
from lutcore.rest.policy import RetryPolicy, parse_retry_after

API_PREFIX = "/api/v1"
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")


def api_root(server: str) -> str:
    """Normalise ``host:port``, ``http://host:port`` or ``.../api/v1`` to the API root URL."""
    url = server.strip().rstrip("/")
    if not url:
        raise ValueError("server URL is empty; pass --server URL or set LUT_SERVER")
    if "://" not in url:
        url = "http://" + url
    if not url.endswith(API_PREFIX):
        url += API_PREFIX
    return url


def _status_text(status: int) -> str:
    """``HTTP 401 unauthorized``: the number for people who search for it, the phrase for everyone else."""
    phrase = httpx.codes.get_reason_phrase(status).lower()
    return f"HTTP {status} {phrase}" if phrase else f"HTTP {status}"


class RestClient:
    """One LUT server. Thread-safe (httpx.Client is), so a heartbeat thread may share it.

    ``sleep`` (the wait between attempts), ``clock`` (wall time, for ``Retry-After`` dates) and
    ``rand`` (jitter) are injectable so tests run without waiting; ``transport`` takes an
    ``httpx.MockTransport``. ``hints`` adds a sentence per status that tells this caller's users
    what to change (a CLI flag, a constructor argument).
    """

    def __init__(
        self,
        server: str,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        policy: Optional[RetryPolicy] = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        log: Optional[Callable[[str], None]] = None,
        hints: Optional[Mapping[int, str]] = None,
        user_agent: str = "nas-lut",
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self.url = api_root(server)
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.rand = rand
        self.hints: Dict[int, str] = dict(hints or {})
        self.round_trips = 0
        self._log = log or (lambda msg: None)
        headers = {"User-Agent": user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        except httpx.InvalidURL as e:
            raise ValueError(f"server URL {server!r} is not a URL: {e}") from None

    @property
    def root(self) -> str:
        """The server's root URL, where ``/healthz`` lives (outside the API prefix)."""
        return self.url[: -len(API_PREFIX)]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        *,
        retries: Optional[int] = None,
        idempotent: Optional[bool] = None,
    ) -> Any:
        """The decoded JSON body (None for an empty one). ``path`` is relative to the API root, or a
        full URL. ``idempotent`` (default: by method) says whether sending the request twice is
        harmless, which decides what may be retried (policy.py)."""
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = (self.policy.retries if retries is None else retries) + 1
        url = path if "://" in path else self.url + path
        what = f"{method} {url}"
        last = ""
        status: Optional[int] = None
        detail = ""
        retry_after: Optional[float] = None
        for attempt in range(attempts):
            if attempt:
                delay = self.policy.delay(attempt, retry_after, self.rand)
                self._log(f"{what}: {last}; retry {attempt}/{attempts - 1} in {delay:.1f}s")
                self.sleep(delay)
            retry_after = None
            self.round_trips += 1
            try:
                resp = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as e:
                connected = not isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout))
                status, detail = None, f"{type(e).__name__}: {e}"
                last = f"cannot reach the server ({detail})"
                if isinstance(e, httpx.UnsupportedProtocol) or not self.policy.retryable(None, safe, connected):
                    break
                continue
            except httpx.RequestError as e:  # an answer came but cannot be read (encoding, redirect loop)
                raise BadResponse(f"{what}: unreadable answer ({type(e).__name__}: {e})", None, str(e), method,
                                  url) from None
            status = resp.status_code
            if status < 400:
                return self._decode(resp, method, url)
            detail = self._detail(resp)
            if not self.policy.retryable(status, safe, True):
                raise self._error(method, url, status, detail)
            last = f"{_status_text(status)} ({detail})"
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), self.clock())
        n = attempt + 1
        raise Unavailable(f"{what}: {last} (gave up after {n} attempt{'s' if n > 1 else ''})", status, detail,
                          method, url)

    @staticmethod
    def _detail(resp: httpx.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            body = None
        return detail_of(body, resp.text)

    def _error(self, method: str, url: str, status: int, detail: str) -> RestError:
        hint = self.hints.get(status, "")
        message = f"{method} {url}: {_status_text(status)} ({detail})" + (f": {hint}" if hint else "")
        cls = AuthError if status in (401, 403) else ServerFault if status >= 500 else Rejected
        return cls(message, status, detail, method, url)

    @staticmethod
    def _decode(resp: httpx.Response, method: str, url: str) -> Any:
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise BadResponse(f"{method} {url}: the answer is not JSON ({resp.text[:200]!r}); is this a LUT server?",
                              resp.status_code, resp.text[:200], method, url) from None
