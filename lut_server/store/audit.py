"""The audit trail: every admin action, who did it, what, when. Append-only."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, select

from lut_server.schema import audit
from lut_server.util import dump_json, iso, now


def record(conn: Connection, actor: str, action: str, subject: str, detail: Optional[Dict[str, Any]] = None) -> None:
    """Written in the same transaction as the action, so an action and its record commit together."""
    conn.execute(audit.insert().values(at=now(), actor=actor[:80], action=action[:40], subject=subject,
                                       detail=dump_json(detail or {}, "audit detail")))


def listing(conn: Connection, limit: int = 200, action: Optional[str] = None) -> List[Dict[str, Any]]:
    q = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if action:
        q = q.where(audit.c.action == action)
    return [{"id": r["id"], "at": iso(r["at"]), "actor": r["actor"], "action": r["action"], "subject": r["subject"],
             "detail": json.loads(r["detail"] or "{}")} for r in conn.execute(q).mappings()]
