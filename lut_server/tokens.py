"""API tokens: random secrets shown once, stored as a SHA-256 hash plus a short prefix to recognise them.

Roles (docs/server.md, "Roles"):

- ``admin``: token management, import, operations (requeue, cancel, quarantine, delete); any board.
- ``agent``: bound to one board name *and* one device class (the ``device`` part of a target id);
  writes only that board's measurements for targets of that class and completes only jobs it holds.
  Tokens made before migration 0004 have no class (NULL) and keep writing for any class until
  reissued; new agent tokens need one (``*`` is accepted, explicitly, for rigs that time several).
- ``search``: reads, registers spaces, requests validations.
- ``read``: reads when the server requires read tokens.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import Connection

from lut_server.schema import ROLES
from lut_server.store import audit
from lut_server.store import tokens as stored
from lut_server.util import BadInput, clean_text

DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ANY_CLASS = "*"
PREFIX_LEN = 10
MIN_ADMIN_LEN = 24
MIN_ADMIN_BITS = 80.0


def check_device_name(name: Any, where: str = "device") -> str:
    if not isinstance(name, str) or not DEVICE_NAME.match(name):
        raise BadInput(f"{where} {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def admin_secret_problem(secret: str) -> Optional[str]:
    """Why ``secret`` is too weak to be the admin token, or None. Length and an estimate of its entropy
    (length x per-character Shannon entropy) must both clear the bar: 'secret' and 'aaaa...' fail."""
    if len(secret) < MIN_ADMIN_LEN:
        return f"it has {len(secret)} characters; use at least {MIN_ADMIN_LEN} (e.g. `openssl rand -base64 32`)"
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    bits = per_char * len(secret)
    if bits < MIN_ADMIN_BITS or len(counts) < 10:
        return (f"it looks low-entropy (about {bits:.0f} bits, {len(counts)} distinct characters); use a random "
                f"secret of at least {MIN_ADMIN_LEN} characters (e.g. `openssl rand -base64 32`)")
    return None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id, role, and (agent tokens) board name and device class."""

    token_id: int
    role: str
    device: Optional[str] = None
    device_class: Optional[str] = None
    prefix: str = ""

    @property
    def actor(self) -> str:
        """The name a claimed job records as its holder."""
        return self.device or f"{self.role}-token-{self.token_id}"

    @property
    def who(self) -> str:
        """How the audit trail and the access log name the caller."""
        return f"{self.role}:{self.token_id}:{self.prefix}" + (f":{self.device}" if self.device else "")

    def may_write_for(self, device: str) -> bool:
        return self.role == "admin" or (self.role == "agent" and self.device == device)

    def may_write_class(self, device_class: str) -> bool:
        if self.role == "admin":
            return True
        if self.role != "agent":
            return False
        return self.device_class in (None, ANY_CLASS) or self.device_class == device_class


def create_token(conn: Connection, role: str, device: Optional[str] = None, note: str = "",
                 secret: Optional[str] = None, device_class: Optional[str] = None,
                 origin: str = "api", actor: Optional[str] = None) -> Dict[str, Any]:
    """Store a new token (hash and a short prefix only) and return it with its secret, shown once.
    With ``actor`` the creation goes to the audit trail."""
    if role not in ROLES:
        raise BadInput(f"role {role!r} must be one of {', '.join(ROLES)}")
    if role == "agent":
        if not device:
            raise BadInput("an agent token needs --device NAME (the board it writes for)")
        check_device_name(device)
        if not device_class:
            raise BadInput("an agent token needs --device-class CLASS (the target device class it writes for, "
                           "e.g. xavier for xavier/tensorrt/fp16; '*' for any)")
        if device_class != ANY_CLASS:
            check_device_name(device_class, "device_class")
    elif device or device_class:
        raise BadInput(f"a {role} token is not bound to a device; drop device/device_class")
    clean_text(note, "note", 500)
    token = secret or "lut_" + secrets.token_urlsafe(24)
    prefix = token[: 4 if origin == "env" else PREFIX_LEN]  # never enough of a chosen secret to guess it
    tid = stored.insert(conn, {"token_hash": hash_token(token), "prefix": prefix, "role": role, "device": device,
                               "device_class": device_class, "origin": origin, "note": note})
    if actor:
        audit.record(conn, actor, "token.create", f"token {tid}",
                     {"role": role, "device": device, "device_class": device_class})
    return {"id": tid, "token": token, "role": role, "device": device, "device_class": device_class,
            "note": note, "prefix": prefix}


def ensure_admin_from_env(conn: Connection, secret: str) -> int:
    """Make LUT_ADMIN_TOKEN a valid admin token and revoke every earlier one from the environment
    (rotation). Returns how many were revoked. The caller refused a weak secret already."""
    h = hash_token(secret)
    revoked = stored.revoke_env_except(conn, h)
    if stored.by_hash(conn, h) is None:
        create_token(conn, "admin", note="from environment", secret=secret, origin="env")
    return revoked


def ensure_token(conn: Connection, secret: str, role: str = "admin") -> None:
    """Make a given secret a valid token (kept for callers that predate ``ensure_admin_from_env``)."""
    if stored.by_hash(conn, hash_token(secret)) is None:
        create_token(conn, role, note="from environment", secret=secret, origin="env")


def list_tokens(conn: Connection) -> List[Dict[str, Any]]:
    rows = stored.listing(conn)
    return [{"id": r["id"], "prefix": r["prefix"], "role": r["role"], "device": r["device"],
             "device_class": r["device_class"], "note": r["note"], "created_at": r["created_at"],
             "revoked": r["revoked_at"] is not None} for r in rows]


def revoke_token(conn: Connection, ident: str, actor: Optional[str] = None) -> int:
    """Revoke by numeric id, by the shown prefix, or by the full secret; returns how many (audited
    with ``actor``)."""
    n = stored.revoke(conn, ident, hash_token(ident), int(ident) if ident.isdigit() and len(ident) < 18 else None)
    if n and actor:
        audit.record(conn, actor, "token.revoke", f"token {ident}" if ident.isdigit() else "token by prefix/secret")
    return n


def lookup_token(conn: Connection, secret: str) -> Optional[Dict[str, Any]]:
    return stored.by_hash(conn, hash_token(secret))


__all__ = ["ANY_CLASS", "Principal", "admin_secret_problem", "check_device_name", "create_token",
           "ensure_admin_from_env", "list_tokens", "lookup_token", "revoke_token"]
