"""lutcore.rest: the one retry and error policy, on httpx.MockTransport (no sockets, no waits)."""

from __future__ import annotations

import email.utils
import json
from typing import Any, Callable, List, Optional, Type, Union

import httpx
import pytest

from lutcore.rest import (
    AuthError,
    BadResponse,
    Rejected,
    RestClient,
    RetryPolicy,
    ServerFault,
    Unavailable,
    api_root,
)
from lutcore.rest.policy import parse_retry_after

NOW = 1_800_000_000.0


class Script:
    """Answers in order (the last repeats): an int status, an (int, headers) pair, or an exception class."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.seen: List[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        step = self.steps[min(len(self.seen), len(self.steps) - 1)]
        self.seen.append(request)
        if isinstance(step, type) and issubclass(step, Exception):
            assert issubclass(step, httpx.RequestError)  # httpx's own failures: they take the request
            raise step("scripted failure", request=request)
        status, headers = step if isinstance(step, tuple) else (step, {})
        if status == 200:
            return httpx.Response(200, json={"ok": True, "n": len(self.seen)}, headers=headers)
        return httpx.Response(status, json={"detail": f"reason {status}"}, headers=headers)


def client(script: Callable[[httpx.Request], httpx.Response], sleeps: Optional[List[float]] = None,
           rand: float = 0.0, **policy: Any) -> RestClient:
    return RestClient("lut:8000", "secret", transport=httpx.MockTransport(script),
                      policy=RetryPolicy(**{"retries": 3, "backoff": 1.0, "max_backoff": 3.0, **policy}),
                      sleep=(sleeps if sleeps is not None else []).append, clock=lambda: NOW, rand=lambda: rand,
                      hints={401: "pass --token"})


def test_api_root_normalisation() -> None:
    assert api_root("lut:8000") == "http://lut:8000/api/v1"
    assert api_root("https://lut.example/") == "https://lut.example/api/v1"
    assert api_root("http://x/api/v1/") == "http://x/api/v1"
    with pytest.raises(ValueError, match="LUT_SERVER"):
        api_root("  ")


def test_transient_statuses_are_retried_with_capped_backoff() -> None:
    script = Script(503, 502, 504, 429, 200)
    sleeps: List[float] = []
    c = client(script, sleeps, retries=4)
    assert c.request("GET", "/targets") == {"ok": True, "n": 5}
    assert sleeps == [1.0, 2.0, 3.0, 3.0]  # 1, 2, 4 -> capped at 3, 8 -> 3 (rand 0: no jitter)
    assert c.round_trips == 5
    assert str(script.seen[0].url) == "http://lut:8000/api/v1/targets"
    assert script.seen[0].headers["Authorization"] == "Bearer secret"


def test_jitter_shortens_the_wait_by_at_most_half() -> None:
    sleeps: List[float] = []
    client(Script(503, 200), sleeps, rand=1.0).request("GET", "/targets")
    assert sleeps == [0.5]
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)


def test_retry_after_seconds_and_dates_are_honoured_up_to_a_cap() -> None:
    sleeps: List[float] = []
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    script = Script((429, {"Retry-After": "5"}), (503, {"Retry-After": date}), (503, {"Retry-After": "9999"}), 200)
    assert client(script, sleeps, max_retry_after=60.0).request("GET", "/x")["n"] == 4
    assert sleeps == [5.0, pytest.approx(7.0, abs=1.0), 60.0]
    assert parse_retry_after("not a date", NOW) is None and parse_retry_after(None, NOW) is None


def test_gives_up_with_the_last_status_and_detail() -> None:
    script = Script(503)
    sleeps: List[float] = []
    with pytest.raises(Unavailable, match=r"GET http://lut:8000/api/v1/x: HTTP 503 service unavailable \(reason 503\) "
                                          r"\(gave up after 3 attempts\)") as e:
        client(script, sleeps, retries=2).request("GET", "/x")
    assert e.value.status == 503 and e.value.detail == "reason 503" and len(script.seen) == 3 and len(sleeps) == 2
    assert not isinstance(e.value, ServerFault)


def test_500_is_not_retried_but_is_still_unavailable() -> None:
    script = Script(500, 200)
    with pytest.raises(ServerFault) as e:
        client(script).request("GET", "/x")
    assert isinstance(e.value, Unavailable) and e.value.status == 500 and e.value.detail == "reason 500"
    assert len(script.seen) == 1


def test_client_errors_are_typed_and_carry_the_detail() -> None:
    def validation(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": [{"loc": ["body", "target"], "msg": "Field required"},
                                                    {"loc": ["body"], "msg": "bad body"}]})

    with pytest.raises(Rejected) as e:
        client(validation).request("POST", "/measurements", json={}, idempotent=True)
    assert e.value.status == 422 and e.value.detail == "target: Field required; bad body"
    assert e.value.method == "POST" and e.value.url.endswith("/api/v1/measurements")
    with pytest.raises(AuthError, match=r"HTTP 401 unauthorized \(reason 401\): pass --token") as auth:
        client(Script(401)).request("GET", "/x")
    assert auth.value.status == 401
    with pytest.raises(Rejected) as nf:
        client(Script(404)).request("GET", "/x")
    assert nf.value.status == 404 and not isinstance(nf.value, AuthError)


def test_text_bodies_and_empty_bodies() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>not the LUT server</html>")

    with pytest.raises(BadResponse, match="not JSON"):
        client(html).request("GET", "/x")

    def plain_error(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, text="conflict, said the proxy")

    with pytest.raises(Rejected) as e:
        client(plain_error).request("GET", "/x")
    assert e.value.detail == "conflict, said the proxy"
    assert client(lambda r: httpx.Response(204)).request("POST", "/x", idempotent=True) is None


def test_transport_failures_are_retried_then_reported() -> None:
    script = Script(httpx.ConnectError, httpx.ReadTimeout, 200)
    sleeps: List[float] = []
    assert client(script, sleeps).request("GET", "/x")["n"] == 3 and len(sleeps) == 2
    with pytest.raises(Unavailable, match=r"cannot reach the server \(ConnectError: scripted failure\)") as e:
        client(Script(httpx.ConnectError), retries=1).request("GET", "/x")
    assert e.value.status is None


def test_non_idempotent_posts_are_retried_only_when_not_acted_on() -> None:
    # 502/504 and a read timeout: the server may have acted, so a plain POST is sent once
    step: Union[int, Type[httpx.RequestError]]
    for step in (502, 504, httpx.ReadTimeout):
        script = Script(step, 200)
        with pytest.raises(Unavailable) as e:
            client(script).request("POST", "/x", json={"a": 1})
        assert len(script.seen) == 1 and e.value.status == (None if step is httpx.ReadTimeout else step)
    # never connected, or told "not processed": safe to send again
    for step in (httpx.ConnectError, 429, 503):
        script = Script(step, 200)
        assert client(script).request("POST", "/x", json={"a": 1})["n"] == 2
        assert json.loads(script.seen[1].content) == {"a": 1}
    # declared idempotent: retried like a GET
    script = Script(502, 200)
    assert client(script).request("POST", "/x", idempotent=True)["n"] == 2


def test_live_server_answers_and_errors(live_server: Any) -> None:
    """The same client against a real `lut serve`: a read, a typed 401 and a typed 422 with the detail."""
    with RestClient(live_server.url, live_server.admin_token) as c:
        assert isinstance(c.request("GET", "/targets"), list)
        assert c.request("GET", c.root + "/healthz")
        with pytest.raises(Rejected) as e:
            c.request("POST", "/lookup", json={"keys": []}, idempotent=True)
        assert e.value.status == 422 and "target" in e.value.detail
    with RestClient(live_server.url, "wrong-token") as c, pytest.raises(AuthError) as auth:
        c.request("POST", "/import", json={"schema": "nas-lut/1", "targets": []}, idempotent=True)
    assert auth.value.status == 401 and auth.value.detail


def test_unusable_urls_and_unreadable_answers_are_typed_not_raw_httpx() -> None:
    with pytest.raises(ValueError, match="not a URL"):
        RestClient("http://[::1", "t")
    script = Script(httpx.UnsupportedProtocol, 200)
    with pytest.raises(Unavailable, match="after 1 attempt"):
        client(script).request("GET", "/x")  # a wrong scheme is not retried
    with pytest.raises(BadResponse, match="DecodingError"):
        client(Script(httpx.DecodingError)).request("GET", "/x")
