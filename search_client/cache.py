"""Cost-matrix responses cached in memory and, optionally, on disk, keyed by target and LUT version.

In memory, a complete matrix is reused for the life of the client (a training loop asks once and
then never waits on the network). On disk (``cache_dir``), every complete response is kept under
``<target>/v<lut_version>/``; when the server cannot be reached the newest version on disk is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

CacheKey = Tuple[str, str, Optional[str], str]  # (target, space id, resolution, metric)


def space_id(wire: Union[str, Dict[str, Any]]) -> str:
    """A name for a built-in, else the definition's name plus a digest of its JSON."""
    if isinstance(wire, str):
        return wire
    text = json.dumps(wire, sort_keys=True, separators=(",", ":"))
    return f"{wire.get('name', 'custom')}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)


class ResponseCache:
    """Memory (and disk) store of complete ``/cost-matrix`` responses."""

    def __init__(self, cache_dir: Union[str, Path, None] = None) -> None:
        self.memory: Dict[CacheKey, Dict[str, Any]] = {}
        self.dir = Path(cache_dir).expanduser() if cache_dir is not None else None

    def get(self, key: CacheKey) -> Optional[Dict[str, Any]]:
        return self.memory.get(key)

    def put(self, key: CacheKey, resp: Dict[str, Any]) -> None:
        self.memory[key] = resp
        if self.dir is not None and resp.get("lut_version") is not None:
            path = self._path(key, int(resp["lut_version"]))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(resp))
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file

    def clear(self) -> None:
        self.memory.clear()

    def _path(self, key: CacheKey, version: int) -> Path:
        assert self.dir is not None
        target, sid, res, metric = key
        return self.dir / _slug(target) / f"v{version}" / f"{_slug(sid)}@{res or 'default'}.{metric}.json"

    def newest_on_disk(self, key: CacheKey) -> Optional[Dict[str, Any]]:
        """The response with the highest LUT version on disk for this key, if any."""
        if self.dir is None:
            return None
        base = self.dir / _slug(key[0])
        if not base.is_dir():
            return None
        versions = sorted((int(p.name[1:]) for p in base.glob("v*") if p.name[1:].isdigit()), reverse=True)
        for v in versions:
            p = self._path(key, v)
            if p.exists():
                try:
                    return json.loads(p.read_text())
                except ValueError:
                    continue
        return None
