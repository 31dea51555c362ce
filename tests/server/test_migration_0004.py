"""Migration 0004 on a database written by the previous server (SQLite and PostgreSQL): duplicate open
jobs (op and validate) left by check-then-insert registration are cancelled, env admin tokens keep only 4 characters,
custom space names get bound to their newest definition, old agent tokens keep a NULL class."""

from __future__ import annotations

import json
from typing import Dict

from alembic import command
from sqlalchemy import text

from lut_server.db import Database, alembic_config
from lut_server.tokens import hash_token


def test_upgrade_from_0003(db_url: str) -> None:
    db = Database(db_url)
    cfg = alembic_config(db)
    with db.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.commit()
    old_def = json.dumps({"name": "mine", "layers": [1]})
    new_def = json.dumps({"name": "mine", "layers": [1, 2]})
    with db.write() as c:
        c.execute(text("INSERT INTO targets (id, tid, spec, lut_version, created_at) VALUES (1, 't/b/p', '{}', 0, 0)"))
        c.execute(text("INSERT INTO ops (id, key, digest, family, spec, macs, params) "
                       "VALUES (1, 'k', 'd', 'conv', '{}', 1, 1)"))
        for jid, status in ((1, "queued"), (2, "queued"), (3, "parked"), (4, "done")):
            c.execute(text("INSERT INTO jobs (id, target_id, op_id, kind, status, priority, attempts, max_attempts, "
                           "payload, created_at, updated_at) VALUES (:i, 1, 1, 'op', :s, 0, 0, 3, '{}', 0, 0)"),
                      {"i": jid, "s": status})
        for jid, status in ((5, "queued"), (6, "queued"), (7, "claimed"), (8, "done")):  # one request, 4 jobs
            c.execute(text("INSERT INTO jobs (id, target_id, op_id, kind, status, priority, attempts, max_attempts, "
                           "payload, created_at, updated_at) VALUES (:i, 1, NULL, 'validate', :s, -1, 0, 3, "
                           "'{\"archs\":\"random:2\"}', 0, 0)"), {"i": jid, "s": status})
        c.execute(text("INSERT INTO tokens (token_hash, prefix, role, device, note, created_at) VALUES "
                       "(:h, 'lut_admin_', 'admin', NULL, 'from environment', 0), "
                       "(:h2, 'lut_abcdef', 'agent', 'board-1', '', 0)"),
                  {"h": hash_token("x" * 30), "h2": hash_token("y" * 30)})
        for i, d in ((1, old_def), (2, new_def)):
            c.execute(text("INSERT INTO spaces (id, target_id, name, resolution, definition, priority, registered_at) "
                           "VALUES (:i, 1, 'mine', :r, :d, 0, 0)"), {"i": i, "r": f"{i}x{i}", "d": d})
    db.upgrade()
    with db.read() as c:
        states: Dict[int, str] = dict(c.execute(text("SELECT id, status FROM jobs ORDER BY id")).all())
        assert states == {1: "queued", 2: "cancelled", 3: "cancelled", 4: "done", 5: "queued", 6: "cancelled",
                          7: "cancelled", 8: "done"}
        # the partial indexes are partial: done and cancelled jobs of one op may pile up
        c.execute(text("INSERT INTO jobs (id, target_id, op_id, kind, status, priority, attempts, max_attempts, "
                       "payload, created_at, updated_at) VALUES (9, 1, 1, 'op', 'done', 0, 0, 3, '{}', 0, 0)"))
        toks = c.execute(text("SELECT prefix, origin, device_class FROM tokens ORDER BY id")).all()
        assert [tuple(t) for t in toks] == [("lut_", "env", None), ("lut_abcdef", "api", None)]
        bound = c.execute(text("SELECT name, definition FROM space_definitions")).all()
        assert [tuple(b) for b in bound] == [("mine", new_def)]
    db.dispose()
