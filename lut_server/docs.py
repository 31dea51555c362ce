"""API docs that work offline: Swagger UI and ReDoc with their assets served by this server.

The assets come from the ``fastapi-offline`` wheel (Swagger UI 5, which reads OpenAPI 3.1, and the
ReDoc standalone bundle), mounted under ``/static/docs``; FastAPI's own pages would load them from a CDN.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
PREFIX = "/static/docs"


def install_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` over ``/static/docs/*`` (the app is built with docs_url=redoc_url=None)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    title = f"{app.title} - API docs"

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(openapi_url=root + (app.openapi_url or "/openapi.json"), title=title,
                                   swagger_js_url=f"{root}{PREFIX}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{PREFIX}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{PREFIX}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(openapi_url=root + (app.openapi_url or "/openapi.json"), title=title,
                              redoc_js_url=f"{root}{PREFIX}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{PREFIX}/favicon.png", with_google_fonts=False)
