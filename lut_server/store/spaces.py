"""Space registrations per target, and the binding of custom space names to their definition."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, select

from lut_server.schema import space_definitions, spaces, targets
from lut_server.util import insert_ignore, now, upsert


def definition_of(conn: Connection, name: str) -> Optional[str]:
    return conn.execute(select(space_definitions.c.definition).where(space_definitions.c.name == name)).scalar()


def bind(conn: Connection, name: str, digest: str, definition: str) -> str:
    """Bind ``name`` to ``digest`` unless it is bound already; the digest it is bound to now."""
    insert_ignore(conn, space_definitions, [{"name": name, "digest": digest, "definition": definition,
                                             "created_at": now()}], ["name"])
    return str(conn.execute(select(space_definitions.c.digest).where(space_definitions.c.name == name)).scalar_one())


def save_registration(conn: Connection, target_id: int, name: str, resolution: str, definition: Optional[str],
                      priority: int) -> None:
    upsert(conn, spaces, [{"target_id": target_id, "name": name, "resolution": resolution, "definition": definition,
                           "priority": priority, "registered_at": now()}], ["target_id", "name", "resolution"])


def delete(conn: Connection, name: str) -> Dict[str, int]:
    regs = conn.execute(spaces.delete().where(spaces.c.name == name)).rowcount or 0
    defs = conn.execute(space_definitions.delete().where(space_definitions.c.name == name)).rowcount or 0
    return {"registrations": int(regs), "definitions": int(defs)}


def registered(conn: Connection) -> List[Dict[str, Any]]:
    """Registered (space, resolution, target) triples, for status."""
    q = (select(spaces.c.name, spaces.c.resolution, spaces.c.definition, spaces.c.priority, targets.c.tid)
         .join(targets, targets.c.id == spaces.c.target_id).order_by(targets.c.tid, spaces.c.name))
    return [dict(r) for r in conn.execute(q).mappings()]
