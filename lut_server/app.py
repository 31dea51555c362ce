"""The FastAPI application: routers, error mapping, metrics, and the database on app.state."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from typing import AsyncIterator, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from lut_server import __version__
from lut_server.clock import Clock, system_clock
from lut_server.config import Settings
from lut_server.db import Database
from lut_server.matrix_cache import MatrixCache
from lut_server.matrix_refresh import MatrixRefresher
from lut_server.responses import SafeJSONResponse, validation_error
from lut_server.schemas import Health
from lut_server.tokens import admin_secret_problem, ensure_admin_from_env
from lut_server.util import BadInput
from lutcore.errors import LutError


class WeakAdminToken(LutError):
    """LUT_ADMIN_TOKEN is too easy to guess; the server refuses to start with it."""

DESCRIPTION = """Central latency lookup table for hardware-aware NAS.

Agents (`Authorization: Bearer <agent token>`) register devices, claim jobs and post measurements;
search clients read lookups and cost matrices. The contract is `docs/api.md`; server operation in
`docs/server.md`."""


def create_app(settings: Optional[Settings] = None, db: Optional[Database] = None, upgrade: bool = True,
               clock: Clock = system_clock) -> FastAPI:
    """Build the app over ``settings.db_url`` (schema upgraded unless ``upgrade`` is False); ``clock``
    times leases and job states (tests pass one they can move)."""
    settings = settings or Settings.from_env()
    if settings.admin_token and (why := admin_secret_problem(settings.admin_token)):
        raise WeakAdminToken(f"LUT_ADMIN_TOKEN refused: {why}")
    db = db or Database(settings.db_url)
    if upgrade:
        db.upgrade()
    if settings.admin_token:  # a new value revokes the one before it
        db.transact(lambda conn: ensure_admin_from_env(conn, settings.admin_token))  # type: ignore[arg-type]

    cache = MatrixCache()
    refresher = MatrixRefresher(cache, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        refresher.start()
        gc.collect()
        gc.freeze()  # what start-up built lives as long as the worker: no full collection walks it again
        try:
            yield
        finally:
            refresher.stop()

    app = FastAPI(title="nas-lut server", version=__version__, description=DESCRIPTION,
                  default_response_class=SafeJSONResponse, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.db = db
    app.state.settings = settings
    app.state.clock = clock
    app.state.matrix_cache = cache
    from lut_server.predicted import PredictorCache

    app.state.predictors = PredictorCache()
    from lut_server.spaces import builtin_names

    builtin_names()  # load lutcore's space registry before any request thread races on it

    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]

    @app.exception_handler(BadInput)
    async def _bad_input(_r: Request, exc: BadInput) -> SafeJSONResponse:
        return SafeJSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(LutError)
    async def _lut_error(_r: Request, exc: LutError) -> SafeJSONResponse:
        return SafeJSONResponse({"detail": str(exc)}, status_code=422)

    from lut_server.api import admin, dashboard, jobs, lut, operations, spaces, validations
    from lut_server.metrics import install_metrics

    for r in (admin.router, lut.router, spaces.router, jobs.router, validations.router, operations.router,
              dashboard.router):
        app.include_router(r, prefix="/api/v1")
    dashboard.install_dashboard(app)  # the live dashboard at /
    from lut_server.api.matrix_fast import MatrixFastPath

    # inside the metrics, access log and body limit: its answers are counted, logged and bounded like any
    app.add_middleware(MatrixFastPath, cache=app.state.matrix_cache, enabled=not settings.read_token_required)
    install_metrics(app)
    from lut_server.docs import install_docs
    from lut_server.middleware import install_middleware

    install_docs(app)
    install_middleware(app, settings)

    @app.get("/healthz", tags=["health"], response_model=Health, summary="Liveness and database reachability")
    def healthz() -> Health:
        with db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return Health(status="ok", db=db.dialect, version=__version__)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (`lut serve --workers N`): settings from the environment, schema
    already upgraded by the parent process."""
    settings = Settings.from_env()
    settings.admin_token = None  # the parent made it valid already; workers would race on the insert
    return create_app(settings, upgrade=False)
