"""API tokens: the SHA-256 of each secret, a short prefix, role, board and class; never the secret."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, or_, select, update

from lut_server.schema import tokens
from lut_server.util import now


def insert(conn: Connection, row: Dict[str, Any]) -> int:
    return int(conn.execute(tokens.insert().returning(tokens.c.id), {**row, "created_at": now()}).scalar_one())


def by_hash(conn: Connection, token_hash: str) -> Optional[Dict[str, Any]]:
    row = conn.execute(select(tokens).where(tokens.c.token_hash == token_hash)).mappings().first()
    return dict(row) if row else None


def listing(conn: Connection) -> List[Dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(tokens).order_by(tokens.c.id)).mappings()]


def revoke(conn: Connection, prefix: str, token_hash: str, token_id: Optional[int]) -> int:
    """Revoke the active tokens matching any of prefix, hash or id; how many."""
    cond = [tokens.c.prefix == prefix, tokens.c.token_hash == token_hash]
    if token_id is not None:
        cond.append(tokens.c.id == token_id)
    res = conn.execute(update(tokens).where(or_(*cond), tokens.c.revoked_at.is_(None)).values(revoked_at=now()))
    return int(res.rowcount or 0)


def revoke_env_except(conn: Connection, token_hash: str) -> int:
    """Revoke the tokens an earlier LUT_ADMIN_TOKEN made, but the current one."""
    res = conn.execute(update(tokens).where(tokens.c.origin == "env", tokens.c.token_hash != token_hash,
                                            tokens.c.revoked_at.is_(None)).values(revoked_at=now()))
    return int(res.rowcount or 0)
