"""Tokens (admin) and device registration (agent)."""

from __future__ import annotations

from typing import Any, Dict, List

from fastapi import APIRouter, HTTPException, Path, Request

from lut_server import devices as devices_svc
from lut_server import tokens as tokens_svc
from lut_server.auth import Admin, Reader, Writer, require_device
from lut_server.models import DeviceIn, DeviceOut, TokenIn, TokenOut
from lut_server.tokens import Principal, check_device_name

router = APIRouter(tags=["devices and tokens"])


@router.post("/devices", response_model=DeviceOut, summary="Register a board and its fingerprint")
def register_device(body: DeviceIn, request: Request, p: Principal = Writer) -> Dict[str, Any]:
    """Idempotent. `changed` is true when the fingerprint differs from the device's previous one."""
    check_device_name(body.name, "name")
    require_device(p, body.name)
    with request.app.state.db.write() as conn:
        return devices_svc.register_device(conn, body.name, body.device_class, body.fingerprint)


@router.get("/devices", summary="Devices with their current fingerprint and its history")
def list_devices(request: Request, _p: Any = Reader) -> List[Dict[str, Any]]:
    with request.app.state.db.read() as conn:
        return devices_svc.list_devices(conn)


@router.post("/tokens", response_model=TokenOut, summary="Create a token (admin); the secret is shown once")
def create_token(body: TokenIn, request: Request, _p: Principal = Admin) -> Dict[str, Any]:
    with request.app.state.db.write() as conn:
        return tokens_svc.create_token(conn, body.role, body.device, body.note)


@router.get("/tokens", summary="List tokens (admin); secrets are never shown")
def list_tokens(request: Request, _p: Principal = Admin) -> List[Dict[str, Any]]:
    with request.app.state.db.read() as conn:
        return tokens_svc.list_tokens(conn)


@router.delete("/tokens/{token_id}", summary="Revoke a token (admin)")
def revoke_token(request: Request, token_id: int = Path(ge=1, le=2**62), _p: Principal = Admin) -> Dict[str, Any]:
    with request.app.state.db.write() as conn:
        n = tokens_svc.revoke_token(conn, str(token_id))
    if not n:
        raise HTTPException(404, f"no active token with id {token_id}")
    return {"revoked": n}
