"""Space registration (enqueues missing ops), the cost matrix and cell costs (pre-rendered bytes, ETag, 304)."""

from __future__ import annotations

import functools
from typing import Any, Dict, Optional

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection

from lut_server import plans, predicted, spaces
from lut_server.api.deps import Db, ReadConn, write
from lut_server.auth import Reader, Registrar, require_class
from lut_server.db import Database
from lut_server.matrix_cache import MatrixCache, alias, etag_matches
from lut_server.responses import SafeJSONResponse
from lut_server.schemas import CellCostsIn, CellCostsOut, CostMatrixIn, CostMatrixOut, SpaceIn, SpaceOut
from lut_server.store import calibrations
from lut_server.store.registry import parse_target
from lut_server.tokens import Principal

router = APIRouter(tags=["spaces"])


@router.post("/spaces", response_model=SpaceOut, summary="Register a space for a target; enqueue the ops it lacks")
def register_space(body: SpaceIn, request: Request, p: Principal = Registrar, db: Database = Db) -> Dict[str, Any]:
    """Search, agent (own device class) or admin token. Idempotent: open jobs are not duplicated. A custom
    name is bound to its definition: another definition under a taken name is a 409. With `budget` (or
    `budget_share`) a measurement plan enqueues a batch at a time, chosen by the predictor, until every
    unmeasured cell's interval is within `interval_bound` or the budget is spent (`plan` in the answer)."""
    target = parse_target(body.target)
    if p.role == "agent":
        require_class(p, target.device)
    attempts = request.app.state.settings.max_attempts
    with db.read() as conn:  # bounds checked and the space built before the write lock
        sp = spaces.resolve(conn, body.space, body.resolution)
    return write(db, lambda c: plans.register(c, body.space, body.resolution, body.target, body.priority, attempts,
                                              body.budget, body.budget_share, body.interval_bound, resolved=sp))


@router.post("/cost-matrix", response_model=CostMatrixOut,
             summary="[layers x candidates] latency matrix, mask, fixed cost and coverage")
def cost_matrix(body: CostMatrixIn, request: Request, _p: Any = Reader, conn: Connection = ReadConn) -> Response:
    """Served from pre-rendered bytes valid for the target's `lut_version` and calibration; the ETag
    answers `If-None-Match` with 304. `missing: "predict"` fills unmeasured cells from the target's
    predictor, flagged (`predicted`) with their intervals (`lo`, `hi`); 422 when the target has too
    few measured entries to fit one."""
    cache: MatrixCache = request.app.state.matrix_cache
    parse_target(body.target)
    sp = spaces.chain(spaces.resolve(conn, body.space, body.resolution))
    version = calibrations.matrix_version(conn, body.target, sp.name, sp.resolution_str)
    key = (body.target, sp.name, spaces.digest(sp), sp.resolution_str, body.metric, body.missing)
    words = alias(body.target, body.space, body.resolution, body.metric, body.missing) \
        if isinstance(body.space, str) else None
    hit = cache.get(key, version, words)
    if hit is None:
        def render() -> bytes:
            cm = spaces.cost_matrix(conn, sp, None, body.target, body.metric)
            if body.missing == "predict":
                cm = predicted.fill_matrix(conn, request.app.state.predictors, cm, sp, body.metric)
            return bytes(SafeJSONResponse(cm).body)

        hit = cache.fill(key, version, words, render)
    body_bytes, etag = hit
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body_bytes, media_type="application/json", headers=headers)


@router.post("/cell-costs", response_model=CellCostsOut,
             summary="A cell space's costs: [cells x edges x ops], preprocessing, depth options, fixed cost")
def cell_costs(body: CellCostsIn, request: Request, _p: Any = Reader, conn: Connection = ReadConn) -> Response:
    """The cell spaces' counterpart of /cost-matrix, cached and ETagged the same way (by the target's
    `lut_version` and calibration). `missing: "predict"` fills unmeasured keys from the target's predictor,
    flagged (`predicted` per key, `predicted_cells` per C cell) with their intervals (`lo`, `hi`); 422 when
    the target has too few measured entries to fit one."""
    cache: MatrixCache = request.app.state.matrix_cache
    parse_target(body.target)
    sp = spaces.cells(spaces.resolve(conn, body.space, body.resolution))
    version = calibrations.matrix_version(conn, body.target, sp.name, sp.resolution_str)
    key = (body.target, sp.name, spaces.digest(sp), sp.resolution_str, body.metric, "cells", body.missing)
    fill: Optional[spaces.CellFill] = None
    if body.missing == "predict":
        fill = functools.partial(predicted.fill_cells, conn, request.app.state.predictors, sp, body.target,
                                 body.metric)

    hit = cache.get(key, version)
    if hit is None:
        hit = cache.fill(key, version, None, lambda: bytes(SafeJSONResponse(
            spaces.cell_costs(conn, sp, None, body.target, body.metric, fill)).body))
    body_bytes, etag = hit
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body_bytes, media_type="application/json", headers=headers)
