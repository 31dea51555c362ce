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

    @classmethod
    def from_env(cls, db_url: Optional[str] = None, read_token_required: Optional[bool] = None) -> Settings:
        return cls(
            db_url=db_url or default_url(),
            read_token_required=(_flag("LUT_READ_TOKEN_REQUIRED") if read_token_required is None
                                 else read_token_required),
            max_attempts=int(os.environ.get("LUT_MAX_ATTEMPTS", "3")),
            admin_token=os.environ.get("LUT_ADMIN_TOKEN") or None,
        )
