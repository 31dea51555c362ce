"""Prometheus metrics: request latency per route, ingest and claim counters, queue depth on scrape."""

from __future__ import annotations

from typing import Any, Iterator

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from lut_server.auth import reader
from lut_server.middleware import RequestObserver


class _QueueCollector:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        from lut_server.store.jobs import queue_depth

        g = GaugeMetricFamily("lut_jobs", "jobs by target and state", labels=["target", "state"])
        try:
            with self.app.state.db.read() as conn:
                depth = queue_depth(conn)
        except Exception:  # a scrape must not fail because the database blinked
            depth = {}
        for tid, counts in sorted(depth.items()):
            for state, n in counts.items():
                g.add_metric([tid, state], n)
        yield g


class Metrics:
    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram("lut_http_request_seconds", "request latency", ["method", "route", "status"],
                                  registry=self.registry)
        self.measurements = Counter("lut_measurements_total", "measurement items posted", ["result"],
                                    registry=self.registry)
        self.jobs_claimed = Counter("lut_jobs_claimed_total", "jobs handed out", registry=self.registry)
        self.registry.register(_QueueCollector(app))

    def accepted(self, accepted: int, rejected: int) -> None:
        self.measurements.labels("accepted").inc(accepted)
        self.measurements.labels("rejected").inc(rejected)

    def claimed(self, n: int) -> None:
        self.jobs_claimed.inc(n)

    def observe_request(self, scope: Any, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.requests.labels(scope["method"], route, str(status)).observe(seconds)


def install_metrics(app: FastAPI) -> None:
    m = Metrics(app)
    app.state.metrics = m

    app.add_middleware(RequestObserver, observe=m.observe_request)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics (a token under --read-token-required)",
             response_class=Response, dependencies=[Depends(reader)])
    def metrics() -> Response:
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
