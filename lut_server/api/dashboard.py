"""The live dashboard: the page at ``/`` with its assets, and the small JSON answers it polls.

Reads follow the API's rule (open, or any valid token under ``--read-token-required``). The page
itself holds no data; under ``--read-token-required`` it is answered 401 without a token, with the
same page as body, so a browser still shows it and asks for a token that it then sends as
``Authorization: Bearer`` on its JSON calls (kept in the tab's sessionStorage only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Connection

from lut_server import dashboard_data
from lut_server.api.deps import ReadConn
from lut_server.auth import Reader, reader
from lut_server.dashboard_schemas import Agent, CellHeatmaps, FleetClass, Heatmap, Overview, ParkedJob, Session, Truth
from lut_server.store import jobs
from lut_server.tokens import Principal

ASSETS = Path(__file__).resolve().parents[1] / "dashboard"
PREFIX = "/dashboard/assets"

router = APIRouter(prefix="/dashboard", tags=["dashboard"])


@router.get("/session", response_model=Session, summary="Who the dashboard's caller is (role), and the read rule")
def session(request: Request, p: Optional[Principal] = Reader) -> Dict[str, Any]:
    return dashboard_data.session(p.role if p else None, request.app.state.settings.read_token_required)


@router.get("/overview", response_model=Overview, summary="Coverage per registered space and target, queue, ETA")
def overview(_p: Any = Reader, conn: Connection = ReadConn) -> Dict[str, Any]:
    return dashboard_data.overview(conn)


@router.get("/agents", response_model=List[Agent], summary="Boards: last heartbeat and post, fingerprint, jobs held")
def agents(_p: Any = Reader, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return dashboard_data.agents(conn)


@router.get("/parked", response_model=List[ParkedJob], summary="Parked jobs with their last error")
def parked(_p: Any = Reader, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return jobs.parked(conn)


@router.get("/truth", response_model=List[Truth], summary="Predicted against measured, error histogram, calibration")
def truth(_p: Any = Reader, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return dashboard_data.truth(conn)


@router.get("/heatmaps", response_model=List[Heatmap], summary="C(i,j) per registered space and target")
def heatmaps(_p: Any = Reader, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return dashboard_data.heatmaps(conn)


@router.get("/cell-heatmaps", response_model=List[CellHeatmaps],
            summary="Per registered cell space and target, C(edge, op) per cell type")
def cell_heatmaps(_p: Any = Reader, conn: Connection = ReadConn,
                  space: Optional[str] = Query(None, max_length=256, description="only this space"),
                  target: Optional[str] = Query(None, max_length=512, description="only this target")
                  ) -> List[Dict[str, Any]]:
    """Each cell type's [edges x ops] costs summed over its cells (null: unmeasured); 422 when a filter
    matches no registered cell space."""
    return dashboard_data.cell_heatmaps(conn, space, target)


@router.get("/fleet", response_model=List[FleetClass], summary="Boards of a class side by side, and who disagrees")
def fleet(_p: Any = Reader, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return dashboard_data.fleet(conn)


def install_dashboard(app: FastAPI) -> None:
    """``/`` and ``/dashboard/assets/*`` (HTML, CSS and JS shipped in lut_server/dashboard; no CDN)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="dashboard-assets")
    page = (ASSETS / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        try:
            reader(request)
        except HTTPException as e:
            return HTMLResponse(page, status_code=e.status_code, headers=e.headers)
        return HTMLResponse(page)
