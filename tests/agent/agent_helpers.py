"""Shared pieces of the agent's end-to-end tests: a tiny space, server queries, fast agent flags."""

from __future__ import annotations

import socket
from typing import Any, Dict, List

import httpx

from lutcore.spaces.definition import space_from_dict

# Six unique ops at 32x32: fast enough to time many times in one test run.
TINY_SPACE: Dict[str, Any] = {
    "name": "agent-tiny",
    "input": [3, 32, 32],
    "catalogue": {
        "name": "agent-tiny-cat",
        "skip_policy": "identity",
        "candidates": [
            {"name": "k3_e1", "kernel": 3, "expansion": 1},
            {"name": "k3_e3", "kernel": 3, "expansion": 3},
            {"name": "skip"},
        ],
    },
    "stem": [{"op": "conv", "c_out": 8, "kernel": 3, "stride": 2, "act": "relu"}],
    "layers": [{"c_out": 8, "stride": 1, "repeat": 2}, {"c_out": 16, "stride": 2}],
    "head": [{"op": "conv", "c_out": 32, "kernel": 1}],
}

# Tiny budgets: these tests check delivery, not timing quality.
FAST = ["--ci", "0.5", "--max-time-per-op", "0.02", "--min-samples", "3", "--max-warmup", "0.01"]


def tiny_keys() -> List[str]:
    return sorted(space_from_dict(TINY_SPACE).at().unique_ops())


def dead_url() -> str:
    """A localhost URL nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def api(url: str) -> str:
    return url.rstrip("/") + "/api/v1"


def register_space(url: str, token: str, target_id: str, space: Any = None, resolution: Any = None) -> Dict[str, Any]:
    body = {"space": space if space is not None else TINY_SPACE, "resolution": resolution, "target": target_id}
    r = httpx.post(api(url) + "/spaces", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    r.raise_for_status()
    return r.json()


def cost_matrix(url: str, target_id: str, space: Any = None, resolution: Any = None) -> Dict[str, Any]:
    body = {
        "space": space if space is not None else TINY_SPACE,
        "resolution": resolution,
        "target": target_id,
        "metric": "median_ms",
    }
    r = httpx.post(api(url) + "/cost-matrix", json=body, timeout=60)
    r.raise_for_status()
    return r.json()


def queue(url: str) -> Dict[str, int]:
    r = httpx.get(api(url) + "/status", timeout=30)
    r.raise_for_status()
    return r.json()["queue"]


def measurement_counts(url: str, target_id: str) -> Dict[str, int]:
    """key -> number of stored measurements for the target (from the export document)."""
    r = httpx.get(api(url) + "/export", params={"target": target_id}, timeout=60)
    r.raise_for_status()
    out: Dict[str, int] = {}
    for t in r.json()["targets"]:
        for e in t["entries"]:
            out[e["key"]] = len(e["measurements"])
    return out


def target_id(backend: str = "pytorch-cpu", device: str = "cpu-test", threads: int = 1) -> str:
    """The target id the agent will claim for, as its backend computes it."""
    from profiler_agent.backends import get_backend

    b = get_backend(backend, threads=threads)
    try:
        return b.target(device).id
    finally:
        b.close()
