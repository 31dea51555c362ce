"""Admin operations that take data out or undo work, and the audit trail that records them."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import Connection

from lut_server import spaces
from lut_server.api.deps import Db, ReadConn, write
from lut_server.auth import Admin
from lut_server.db import Database
from lut_server.schemas import AuditEntry, Deleted, RunIn, RunOut
from lut_server.store import audit, registry, runs
from lut_server.store.registry import parse_target
from lut_server.tokens import Principal
from lut_server.util import clean_text

router = APIRouter(tags=["operations"])


def _run(body: RunIn, p: Principal, db: Database, on: bool) -> Dict[str, Any]:
    parse_target(body.target)
    clean_text(body.run_id, "run_id", 64)
    clean_text(body.reason, "reason", 1000)

    def tx(c: Connection) -> Dict[str, Any]:
        target_id = runs.target_id_of(c, body.target)
        op_ids = [] if target_id is None else runs.set_quarantine(c, target_id, body.run_id, on)
        if not op_ids:
            raise HTTPException(404, f"no run {body.run_id!r} on {body.target}")
        version = registry.bump_version(c, target_id)  # type: ignore[arg-type]
        audit.record(c, p.who, "run.quarantine" if on else "run.restore", f"{body.target} run {body.run_id}",
                     {"reason": body.reason, "measurements": len(op_ids)})
        return {"target": body.target, "run_id": body.run_id, "measurements": len(op_ids),
                "entries_recomputed": len(set(op_ids)), "lut_version": version}

    return write(db, tx)


@router.post("/runs/quarantine", response_model=RunOut, summary="Leave a run out of the LUT (admin)")
def quarantine(body: RunIn, p: Principal = Admin, db: Database = Db) -> Dict[str, Any]:
    """The run's measurements stay stored (and exported) but no entry counts them; entries are recomputed."""
    return _run(body, p, db, True)


@router.post("/runs/restore", response_model=RunOut, summary="Count a quarantined run again (admin)")
def restore(body: RunIn, p: Principal = Admin, db: Database = Db) -> Dict[str, Any]:
    return _run(body, p, db, False)


@router.delete("/targets/{target:path}", response_model=Deleted, summary="Delete a target and its data (admin)")
def delete_target(target: str = Path(max_length=512), p: Principal = Admin, db: Database = Db) -> Dict[str, Any]:
    parse_target(target)

    def tx(c: Connection) -> Dict[str, Any]:
        target_id = runs.target_id_of(c, target)
        if target_id is None:
            raise HTTPException(404, f"unknown target {target!r}")
        counts = runs.delete_target(c, target_id)
        audit.record(c, p.who, "target.delete", target, counts)
        return {"deleted": target, "rows": counts}

    return write(db, tx)


@router.delete("/spaces/{name}", response_model=Deleted, summary="Forget a space name and its registrations (admin)")
def delete_space(name: str = Path(max_length=256), p: Principal = Admin, db: Database = Db) -> Dict[str, Any]:
    def tx(c: Connection) -> Dict[str, Any]:
        counts = spaces.delete(c, name)
        if not any(counts.values()):
            raise HTTPException(404, f"no registered space {name!r}")
        audit.record(c, p.who, "space.delete", name, counts)
        return {"deleted": name, "rows": counts}

    return write(db, tx)


@router.get("/audit", response_model=List[AuditEntry], summary="Admin actions, newest first (admin)")
def get_audit(limit: int = Query(200, ge=1, le=10_000), action: Optional[str] = Query(None, max_length=40),
              _p: Principal = Admin, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return audit.listing(conn, limit, None if action is None else clean_text(action, "action", 40))
