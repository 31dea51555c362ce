"""Server settings, from arguments or the environment (``LUT_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from lut_server.db import default_url


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    db_url: str
    read_token_required: bool = False
    max_attempts: int = 3
    admin_token: Optional[str] = None  # LUT_ADMIN_TOKEN: made a valid admin token at start
    max_body_mb: float = 8.0  # LUT_MAX_BODY_MB: larger request bodies get 413 before they are read
    access_log: bool = True  # LUT_ACCESS_LOG=0 turns off the lut_server.access lines

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, db_url: Optional[str] = None, read_token_required: Optional[bool] = None,
                 max_body_mb: Optional[float] = None) -> Settings:
        return cls(
            db_url=db_url or default_url(),
            read_token_required=(_flag("LUT_READ_TOKEN_REQUIRED") if read_token_required is None
                                 else read_token_required),
            max_attempts=int(os.environ.get("LUT_MAX_ATTEMPTS", "3")),
            admin_token=os.environ.get("LUT_ADMIN_TOKEN") or None,
            max_body_mb=max_body_mb if max_body_mb is not None else _megabytes("LUT_MAX_BODY_MB", 8.0),
            access_log=os.environ.get("LUT_ACCESS_LOG", "1").strip().lower() not in ("0", "false", "no", "off"),
        )


def _megabytes(name: str, default: float) -> float:
    """A positive size in MiB from the environment; a bad value is refused at start, not guessed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} must be a number of MiB, e.g. 8") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}={raw!r} must be a positive number of MiB")
    return value
