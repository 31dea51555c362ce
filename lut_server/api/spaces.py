"""Space registration (enqueues missing ops) and the cost matrix."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Dict, Optional, Tuple

from fastapi import APIRouter, Request, Response

from lut_server import calibrations, spaces
from lut_server.auth import Reader
from lut_server.models import CostMatrixIn, CostMatrixOut, SpaceIn, SpaceOut
from lut_server.registry import parse_target, target_row
from lut_server.responses import SafeJSONResponse

router = APIRouter(tags=["spaces"])


@router.post("/spaces", response_model=SpaceOut, summary="Register a space for a target; enqueue the ops it lacks")
def register_space(body: SpaceIn, request: Request, _p: Any = Reader) -> Dict[str, Any]:
    """Open to readers: it only adds work to the queue. Idempotent: open jobs are not duplicated."""
    settings = request.app.state.settings
    with request.app.state.db.write() as conn:
        return spaces.register(conn, body.space, body.resolution, body.target, body.priority, settings.max_attempts)


@router.post("/cost-matrix", response_model=None, responses={200: {"model": CostMatrixOut}},
             summary="[layers x candidates] latency matrix, mask, fixed cost and coverage")
def cost_matrix(body: CostMatrixIn, request: Request, _p: Any = Reader) -> Response:
    """Answers from a cache keyed by the target's `lut_version`, which every LUT change bumps."""
    cache: MatrixCache = request.app.state.matrix_cache
    with request.app.state.db.read() as conn:
        parse_target(body.target)
        sp = spaces.resolve(conn, body.space, body.resolution)
        got = target_row(conn, body.target)
        # a new calibration changes the answer without a LUT change, so it is part of the cache version
        version = (got[1] if got else -1, calibrations.stamp(conn, body.target, sp.name, sp.resolution_str))
        key = (id(sp), body.target, body.metric)
        hit = cache.get(key, version)
        if hit is None:
            doc = spaces.cost_matrix(conn, sp, None, body.target, body.metric)
            hit = SafeJSONResponse(doc).body
            cache.put(key, version, hit, sp)
    return Response(hit, media_type="application/json")


class MatrixCache:
    """Rendered cost matrices by (space object, target, metric), valid for one (lut_version, calibration)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._d: OrderedDict[Tuple[Any, ...], Tuple[Any, bytes, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Tuple[Any, ...], version: Any) -> Optional[bytes]:
        with self._lock:
            got = self._d.get(key)
            if got is None or got[0] != version:
                return None
            self._d.move_to_end(key)
            return got[1]

    def put(self, key: Tuple[Any, ...], version: Any, body: bytes, space: Any) -> None:
        with self._lock:  # the space is kept alive so its id() cannot be reused by another space
            self._d[key] = (version, body, space)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)
