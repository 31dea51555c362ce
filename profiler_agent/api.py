"""HTTP client for the LUT server's agent endpoints (docs/api.md).

Transient failures (connection refused, timeouts, 5xx, 429) are retried with capped
exponential backoff and jitter, because a board is often on a flaky link and the server
may restart; everything else fails at once with an error that says what to fix. Callers
that must not lose data (the daemon, sync) keep results in the spool, so giving up here
never loses a measurement.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Dict, List, Optional

import httpx

from lutcore.records import Job

API_PREFIX = "/api/v1"
TRANSIENT_STATUS = (429, 500, 502, 503, 504)


class ApiError(Exception):
    """The server answered in a way the agent cannot act on; ``status`` is the HTTP status or None."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    """401/403: the token is missing, wrong, revoked, or bound to another device."""


class RequestRejected(ApiError):
    """422/400/404/409: the request itself is wrong; retrying it cannot help."""


class ServerUnavailable(ApiError):
    """Connection failures or 5xx that outlasted every retry; the request may be tried again later."""


def base_url(server: str) -> str:
    """Normalise ``host:port``, ``http://host:port`` or ``.../api/v1`` to the API root."""
    url = server.strip().rstrip("/")
    if not url:
        raise ValueError("server URL is empty; pass --server URL or set LUT_SERVER")
    if "://" not in url:
        url = "http://" + url
    if not url.endswith(API_PREFIX):
        url += API_PREFIX
    return url


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors: [{loc, msg, ...}]
        parts = []
        for err in detail:
            if isinstance(err, dict) and "msg" in err:
                loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
            else:
                parts.append(str(err))
        return "; ".join(parts)[:500]
    return str(detail)[:500]


class LutApi:
    """The agent's view of one LUT server; thread-safe (httpx.Client is), so a heartbeat thread may share it."""

    def __init__(
        self,
        server: str,
        token: Optional[str],
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        log: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.url = base_url(server)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep  # replaceable: the daemon makes retry waits end early on SIGTERM
        self._log = log or (lambda msg: None)
        headers = {"User-Agent": "profiler-agent"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> LutApi:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------
    def request(self, method: str, path: str, json: Any = None, retries: Optional[int] = None) -> Any:
        """One call with retries on transient failures; returns the decoded JSON body."""
        attempts = (self.retries if retries is None else retries) + 1
        what = f"{method} {path if '://' in path else self.url + path}"
        last = ""
        for attempt in range(attempts):
            if attempt:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                self._log(f"{what}: {last}; retry {attempt}/{attempts - 1} in {delay:.1f}s")
                self.sleep(delay)
            try:
                resp = self._client.request(method, path, json=json)
            except httpx.TransportError as e:
                last = f"cannot reach the server ({type(e).__name__}: {e})"
                continue
            if resp.status_code in TRANSIENT_STATUS:
                last = f"server answered {resp.status_code} ({_detail(resp)})"
                continue
            return self._decode(resp, what)
        plural = "s" if attempts > 1 else ""
        raise ServerUnavailable(f"{what}: {last} (gave up after {attempts} attempt{plural})")

    def _decode(self, resp: httpx.Response, what: str) -> Any:
        code = resp.status_code
        if code == 401:
            raise AuthError(
                f"{what}: 401 unauthorized ({_detail(resp)}): the token is missing or invalid; "
                "pass --token or set LUT_TOKEN to a token from `lut token create --device NAME --device-class CLASS`",
                code,
            )
        if code == 403:
            raise AuthError(
                f"{what}: 403 forbidden ({_detail(resp)}): the token is valid but may not do this; "
                "agent tokens write only for the device name they were created for (check --name)",
                code,
            )
        if code >= 400:
            raise RequestRejected(f"{what}: {code} ({_detail(resp)})", code)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise ApiError(f"{what}: answer is not JSON: {resp.text[:200]!r}", code) from None

    # -- endpoints ---------------------------------------------------------------------
    def health(self, retries: int = 0) -> Any:
        """GET /healthz, which lives at the server root, outside the API prefix."""
        return self.request("GET", self.url[: -len(API_PREFIX)] + "/healthz", retries=retries)

    def register_device(self, name: str, device_class: str, fingerprint: Dict[str, Any]) -> Dict[str, Any]:
        """POST /devices; the answer says whether the fingerprint changed since the last run."""
        body = {"name": name, "device_class": device_class, "fingerprint": fingerprint}
        return self.request("POST", "/devices", json=body)

    def claim(self, target_id: str, n: int, lease_s: float) -> List[Job]:
        out = self.request("POST", "/jobs/claim", json={"target": target_id, "n": n, "lease_s": lease_s})
        return [Job.model_validate(j) for j in (out or {}).get("jobs", [])]

    def heartbeat(self, job_ids: List[int], lease_s: float) -> Dict[str, List[int]]:
        out = self.request("POST", "/jobs/heartbeat", json={"job_ids": list(job_ids), "lease_s": lease_s}, retries=1)
        return {"extended": list(out.get("extended", [])), "lost": list(out.get("lost", []))}

    def fail_job(self, job_id: int, error: str) -> Any:
        return self.request("POST", f"/jobs/{job_id}/fail", json={"error": error[:2000]})

    def release_job(self, job_id: int) -> Any:
        return self.request("POST", f"/jobs/{job_id}/release")

    def post_measurements(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """POST /measurements; safe to repeat, the server ignores a (run_id, key) it already has."""
        return self.request("POST", "/measurements", json=batch)

    def lookup(self, target_id: str, keys: List[str]) -> Dict[str, Any]:
        return self.request("POST", "/lookup", json={"target": target_id, "keys": list(keys), "metric": "median_ms"})
