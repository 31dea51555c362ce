"""Device fingerprint: what hardware and software produced the numbers (stub, being filled in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union


def probe(root: Union[str, Path] = "/", backend: Optional[str] = None) -> Dict[str, Any]:
    return {"warnings": []}


def read_clocks(root: Union[str, Path] = "/") -> Dict[str, Any]:
    return {}


def fingerprint_digest(fp: Dict[str, Any]) -> str:
    return ""
