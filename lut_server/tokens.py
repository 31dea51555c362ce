"""API tokens: random secrets shown once, stored as SHA-256 hashes.

Roles: ``agent`` (bound to one device name; writes only for it), ``read`` (reads when the
server requires read tokens) and ``admin`` (token management, import; may act for any device).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, or_, select, update

from lut_server.schema import ROLES, tokens
from lut_server.util import BadInput, clean_text, now

DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_device_name(name: Any, where: str = "device") -> str:
    if not isinstance(name, str) or not DEVICE_NAME.match(name):
        raise BadInput(f"{where} {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id, role and (agent tokens) device."""

    token_id: int
    role: str
    device: Optional[str]

    @property
    def actor(self) -> str:
        """The name a claimed job records as its holder."""
        return self.device or f"{self.role}-token-{self.token_id}"

    def may_write_for(self, device: str) -> bool:
        return self.role == "admin" or (self.role == "agent" and self.device == device)


def create_token(conn: Connection, role: str, device: Optional[str] = None, note: str = "",
                 secret: Optional[str] = None) -> Dict[str, Any]:
    """Store a new token (hash only) and return it with its secret, which is never shown again."""
    if role not in ROLES:
        raise BadInput(f"role {role!r} must be one of {', '.join(ROLES)}")
    if role == "agent":
        if not device:
            raise BadInput("an agent token needs --device NAME (the board it writes for)")
        check_device_name(device)
    elif device:
        raise BadInput(f"a {role} token is not bound to a device; drop device={device!r}")
    clean_text(note, "note", 500)
    token = secret or "lut_" + secrets.token_urlsafe(24)
    row = {"token_hash": hash_token(token), "prefix": token[:10], "role": role, "device": device,
           "note": note, "created_at": now()}
    tid = conn.execute(tokens.insert().returning(tokens.c.id), row).scalar_one()
    return {"id": tid, "token": token, "role": role, "device": device, "note": note, "prefix": token[:10]}


def ensure_token(conn: Connection, secret: str, role: str = "admin") -> None:
    """Make a given secret a valid token (e.g. LUT_ADMIN_TOKEN from the environment)."""
    if conn.execute(select(tokens.c.id).where(tokens.c.token_hash == hash_token(secret))).first() is None:
        create_token(conn, role, note="from environment", secret=secret)


def list_tokens(conn: Connection) -> List[Dict[str, Any]]:
    rows = conn.execute(select(tokens).order_by(tokens.c.id)).mappings()
    return [{"id": r["id"], "prefix": r["prefix"], "role": r["role"], "device": r["device"], "note": r["note"],
             "created_at": r["created_at"], "revoked": r["revoked_at"] is not None} for r in rows]


def revoke_token(conn: Connection, ident: str) -> int:
    """Revoke by numeric id, by the shown prefix, or by the full secret; returns how many."""
    cond = [tokens.c.prefix == ident, tokens.c.token_hash == hash_token(ident)]
    if ident.isdigit() and len(ident) < 18:
        cond.append(tokens.c.id == int(ident))
    res = conn.execute(update(tokens).where(or_(*cond), tokens.c.revoked_at.is_(None)).values(revoked_at=now()))
    return res.rowcount or 0


def lookup_token(conn: Connection, secret: str) -> Optional[Dict[str, Any]]:
    row = conn.execute(select(tokens).where(tokens.c.token_hash == hash_token(secret))).mappings().first()
    return dict(row) if row else None
