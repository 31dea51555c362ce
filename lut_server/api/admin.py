"""Tokens (admin) and device registration (agent)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import Connection

from lut_server import tokens as tokens_svc
from lut_server.api.deps import Db, ReadConn, write
from lut_server.auth import Admin, Reader, Writer, require_board
from lut_server.db import Database
from lut_server.schemas import DeviceIn, DeviceOut, DeviceView, Revoked, TokenIn, TokenOut, TokenView
from lut_server.store import devices as devices_svc
from lut_server.store.registry import parse_target, target_row
from lut_server.tokens import Principal, check_device_name

router = APIRouter(tags=["devices and tokens"])


@router.post("/devices", response_model=DeviceOut, summary="Register a board and its fingerprint")
def register_device(body: DeviceIn, p: Principal = Writer, db: Database = Db) -> Dict[str, Any]:
    """Idempotent. `changed` is true when the fingerprint differs from the device's previous one."""
    check_device_name(body.name, "name")
    require_board(p, body.name, body.device_class)
    return write(db, lambda c: devices_svc.register_device(c, body.name, body.device_class, body.fingerprint))


@router.get("/devices", response_model=List[DeviceView], summary="Devices with their fingerprint history")
def list_devices(target: Optional[str] = Query(None, max_length=512, description="only the devices that measured "
                                               "or validated for this target"),
                 _p: Any = Reader, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    if target is None:
        return devices_svc.list_devices(conn)
    parse_target(target)
    got = target_row(conn, target)
    if got is None:
        raise HTTPException(404, f"unknown target {target!r}")
    return devices_svc.of_target(conn, got[0])


@router.post("/tokens", response_model=TokenOut, summary="Create a token (admin); the secret is shown once")
def create_token(body: TokenIn, p: Principal = Admin, db: Database = Db) -> Dict[str, Any]:
    return write(db, lambda c: tokens_svc.create_token(c, body.role, body.device, body.note,
                                                       device_class=body.device_class, actor=p.who))


@router.get("/tokens", response_model=List[TokenView], summary="List tokens (admin); secrets are never shown")
def list_tokens(_p: Principal = Admin, conn: Connection = ReadConn) -> List[Dict[str, Any]]:
    return tokens_svc.list_tokens(conn)


@router.delete("/tokens/{token_id}", response_model=Revoked, summary="Revoke a token (admin)")
def revoke_token(token_id: int = Path(ge=1, le=2**62), p: Principal = Admin, db: Database = Db) -> Dict[str, Any]:
    n = write(db, lambda c: tokens_svc.revoke_token(c, str(token_id), actor=p.who))
    if not n:
        raise HTTPException(404, f"no active token with id {token_id}")
    return {"revoked": n}
