"""The agent's endpoints of the LUT server (docs/api.md), on the shared REST client.

Retries and errors follow ``lutcore.rest`` (one policy for every caller): connection failures,
timeouts and 429/502/503/504 are retried with capped, jittered exponential backoff; a 500 is not
retried but raised as ``ServerUnavailable`` like an outage, so the daemon and ``sync`` keep the
results in the spool and try again later: giving up here never loses a measurement. Every POST
the agent sends is safe to repeat and says so.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import httpx

from lutcore.records import Job
from lutcore.rest import API_PREFIX, RestClient, RetryPolicy, api_root
from lutcore.rest import AuthError as AuthError
from lutcore.rest import Rejected as RequestRejected
from lutcore.rest import RestError as ApiError
from lutcore.rest import Unavailable as ServerUnavailable

__all__ = ["API_PREFIX", "ApiError", "AuthError", "LutApi", "RequestRejected", "ServerUnavailable", "base_url"]

base_url = api_root  # the agent's historical name

HINTS = {
    401: "the token is missing or invalid; pass --token or set LUT_TOKEN to a token from "
         "`lut token create --device NAME --device-class CLASS`",
    403: "the token is valid but may not do this; agent tokens write only for the device name they were "
         "created for (check --name)",
}


class LutApi:
    """The agent's view of one LUT server; thread-safe, so a heartbeat thread may share it."""

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
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self._rest = RestClient(server, token, timeout=timeout, sleep=sleep, log=log, hints=HINTS,
                                policy=RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff),
                                user_agent="profiler-agent", transport=transport)
        self.url = self._rest.url

    @property
    def sleep(self) -> Callable[[float], None]:
        """The wait between retries; the daemon replaces it so that a stop request cuts it short."""
        return self._rest.sleep

    @sleep.setter
    def sleep(self, fn: Callable[[float], None]) -> None:
        self._rest.sleep = fn

    def close(self) -> None:
        self._rest.close()

    def __enter__(self) -> LutApi:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, json: Any = None, retries: Optional[int] = None) -> Any:
        """One call under the shared policy; the agent's requests are all safe to repeat."""
        return self._rest.request(method, path, json=json, retries=retries, idempotent=True)

    # -- endpoints ---------------------------------------------------------------------
    def health(self, retries: int = 0) -> Any:
        """GET /healthz, which lives at the server root, outside the API prefix."""
        return self.request("GET", self._rest.root + "/healthz", retries=retries)

    def status(self, retries: int = 1) -> Dict[str, Any]:
        """GET /status: coverage and job counts by target (``queue_by_target``)."""
        return dict(self.request("GET", "/status", retries=retries) or {})

    def register_device(self, name: str, device_class: str, fingerprint: Dict[str, Any]) -> Dict[str, Any]:
        """POST /devices; the answer says whether the fingerprint changed since the last run."""
        body = {"name": name, "device_class": device_class, "fingerprint": fingerprint}
        return dict(self.request("POST", "/devices", json=body))

    def claim(self, target_id: str, n: int, lease_s: float) -> List[Job]:
        """POST /jobs/claim; repeating one whose answer was lost only delays its jobs by one lease."""
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
        return dict(self.request("POST", "/measurements", json=batch) or {})

    def post_validations(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """POST /validations (``validate.validation_body``); safe to repeat, keyed by (run_id, arch)."""
        return dict(self.request("POST", "/validations", json=body) or {})

    def fit_calibration(self, target_id: str, space: str, resolution: str, seed: int = 0,
                        fit_share: float = 0.5) -> Dict[str, Any]:
        """POST /calibrations/fit: the server fits on the same split as ``lutcore.calibration.split``."""
        body = {"target": target_id, "space": space, "resolution": resolution, "seed": seed, "fit_share": fit_share}
        return dict(self.request("POST", "/calibrations/fit", json=body) or {})

    def lookup(self, target_id: str, keys: List[str]) -> Dict[str, Any]:
        body = {"target": target_id, "keys": list(keys), "metric": "median_ms"}
        return dict(self.request("POST", "/lookup", json=body) or {})
