"""FastAPI dependencies that turn ``Authorization: Bearer`` into a Principal, or 401/403."""

from __future__ import annotations

from typing import Optional

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
    return Principal(token_id=row["id"], role=row["role"], device=row["device"])


def writer(request: Request) -> Principal:
    """Agent or admin token required."""
    secret = _bearer(request)
    if secret is None:
        raise HTTPException(401, "this endpoint needs an agent token (lut token create --device NAME)",
                            headers=_CHALLENGE)
    p = _principal(request, secret)
    if p.role not in ("agent", "admin"):
        raise HTTPException(403, f"a {p.role} token cannot write; use an agent token")
    return p


def admin(request: Request) -> Principal:
    secret = _bearer(request)
    if secret is None:
        raise HTTPException(401, "this endpoint needs an admin token (lut token create --admin)", headers=_CHALLENGE)
    p = _principal(request, secret)
    if p.role != "admin":
        raise HTTPException(403, f"a {p.role} token cannot do this; it needs an admin token")
    return p


def reader(request: Request) -> Optional[Principal]:
    """Open unless the server runs with --read-token-required; then any valid token reads."""
    secret = _bearer(request)
    if secret is None:
        if request.app.state.settings.read_token_required:
            raise HTTPException(401, "this server requires a token to read", headers=_CHALLENGE)
        return None
    return _principal(request, secret)


Writer = Depends(writer)
Admin = Depends(admin)
Reader = Depends(reader)


def require_device(p: Principal, device: str) -> None:
    if not p.may_write_for(device):
        raise HTTPException(403, f"this token writes only for device {p.device!r}, not {device!r}")
