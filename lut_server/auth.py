"""FastAPI dependencies that turn ``Authorization: Bearer`` into a Principal, or 401/403, and the
authorization checks of the roles (tokens.py) that need the request's body."""

from __future__ import annotations

from typing import Optional, Tuple

from fastapi import Depends, HTTPException, Request

from lut_server.tokens import Principal, lookup_token

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _bearer(request: Request) -> Optional[str]:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(401, "Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    return value.strip()


def _principal(request: Request, secret: str) -> Principal:
    db = request.app.state.db
    with db.read() as conn:
        row = lookup_token(conn, secret)
    if row is None:
        raise HTTPException(401, "unknown token", headers=_CHALLENGE)
    if row["revoked_at"] is not None:
        raise HTTPException(403, f"token {row['prefix']}... was revoked")
    p = Principal(token_id=row["id"], role=row["role"], device=row["device"], device_class=row["device_class"],
                  prefix=row["prefix"])
    request.state.principal = p  # for the access log
    return p


def _needs(request: Request, roles: Tuple[str, ...], what: str) -> Principal:
    secret = _bearer(request)
    if secret is None:
        raise HTTPException(401, f"this endpoint needs {what}", headers=_CHALLENGE)
    p = _principal(request, secret)
    if p.role not in roles:
        raise HTTPException(403, f"a {p.role} token cannot do this; it needs {what}")
    return p


def writer(request: Request) -> Principal:
    """Agent or admin token required (measurements, devices, jobs, validations)."""
    return _needs(request, ("agent", "admin"), "an agent token (lut token create --device NAME --device-class CLASS)")


def registrar(request: Request) -> Principal:
    """Search, agent or admin token: registering spaces and requesting validations adds work."""
    return _needs(request, ("search", "agent", "admin"), "a search, agent or admin token (lut token create --search)")


def admin(request: Request) -> Principal:
    return _needs(request, ("admin",), "an admin token (lut token create --admin)")


def reader(request: Request) -> Optional[Principal]:
    """Open unless the server runs with --read-token-required; then any valid token reads."""
    secret = _bearer(request)
    if secret is None:
        if request.app.state.settings.read_token_required:
            raise HTTPException(401, "this server requires a token to read", headers=_CHALLENGE)
        return None
    return _principal(request, secret)


Writer = Depends(writer)
Registrar = Depends(registrar)
Admin = Depends(admin)
Reader = Depends(reader)


def require_device(p: Principal, device: str) -> None:
    if not p.may_write_for(device):
        raise HTTPException(403, f"this token writes only for device {p.device!r}, not {device!r}")


def require_class(p: Principal, device_class: str) -> None:
    """An agent writes only for targets of its device class (the first part of the target id)."""
    if not p.may_write_class(device_class):
        raise HTTPException(403, f"this token writes only for {p.device_class!r} targets, not {device_class!r}")


def require_board(p: Principal, device: str, device_class: str) -> None:
    require_device(p, device)
    require_class(p, device_class)
