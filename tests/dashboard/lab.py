"""A small lab behind a real server, built through the REST API as agents and users build it: one space
registered and measured by four boards of one class (one of them 50% slow on three ops), validations
and a fitted calibration, a second registration whose jobs are queued, one job parked, one held."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Sequence

import httpx

from lutcore.spaces import get_space
from tests.client.lutdata import measurement_batch
from tests.server.test_validations_live import RES, SPACE, TARGET, fit, populate

BOARDS = ["cpu-val-01", "cpu-val-02", "cpu-val-03", "cpu-val-04"]  # cpu-val-01 is test_validations_live's DEVICE
SLOW_BOARD = "cpu-val-03"
PARK_ERROR = "RuntimeError: onnxruntime session failed\n  (op left out by the board)"
SECOND_RES = "32x64"  # the second registration: its ops stay queued


def auth(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(server: Any, resolution: str = RES) -> Dict[str, Any]:
    r = httpx.post(server.api + "/spaces", json={"space": SPACE, "resolution": resolution, "target": TARGET.id},
                   headers=auth(server.search_token()), timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def post_ops(server: Any, board: str, keys: List[str], scale: float = 1.0,
             scaled: Sequence[str] = ()) -> Dict[str, Any]:
    """One run of ``board`` timing ``keys`` (the space's op keys) at the made-up times, ``scaled`` ones x scale."""
    space = get_space(SPACE, RES)
    body = measurement_batch(space, TARGET, board, uuid.uuid4().hex, drop=set(space.unique_ops()) - set(keys))
    body["fingerprint"] = {"cpu": "test-cpu", "board": board}
    for item in body["items"]:
        if item["op"]["key"] in scaled:
            item["stats"] = {k: v * scale if k.endswith("_ms") else v for k, v in item["stats"].items()}
    r = httpx.post(server.api + "/measurements", json=body, headers=auth(server.agent_token(board, "cpu-x86")),
                   timeout=60)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    return r.json()


def op_keys() -> List[str]:
    sp = get_space(SPACE, RES)
    return [k for k, s in sp.unique_ops().items() if not s.is_identity]


def build(server: Any) -> Dict[str, Any]:
    register(server)
    populate(server)  # cpu-val-01: every op, then validations of 11 architectures
    fit(server)
    keys = op_keys()
    slow = keys[:3]
    for board in BOARDS[1:]:
        post_ops(server, board, keys, 1.5, slow if board == SLOW_BOARD else [])
    second = register(server, SECOND_RES)
    assert second["enqueued"] > 2, second
    tok = auth(server.agent_token("cpu-val-02", "cpu-x86"))
    parked = None
    for _ in range(3):  # LUT_MAX_ATTEMPTS (3) failures park a job
        got = httpx.post(server.api + "/jobs/claim", json={"target": TARGET.id, "n": 1}, headers=tok).json()["jobs"]
        parked = parked or got[0]["id"]
        assert got[0]["id"] == parked, (got, parked)  # back to the queue, first in line again
        r = httpx.post(server.api + f"/jobs/{parked}/fail", json={"error": PARK_ERROR}, headers=tok)
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "parked", r.json()
    held = httpx.post(server.api + "/jobs/claim", json={"target": TARGET.id, "n": 1},
                      headers=auth(server.agent_token("cpu-val-04", "cpu-x86"))).json()["jobs"][0]
    return {"slow": slow, "parked": parked, "held": held, "second": second}
