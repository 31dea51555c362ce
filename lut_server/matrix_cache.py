"""Rendered cost matrices, kept as the exact JSON bytes served, with an ETag.

Keyed on what names the answer: (target, space name, definition digest, resolution, metric); valid
for one version, (target's ``lut_version``, calibration stamp), which every change of an entry or a
calibration moves. Nothing is keyed on object identity, so two equal definitions share an entry.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Optional, Tuple

Key = Tuple[str, str, str, str, str]


class MatrixCache:
    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._d: OrderedDict[Key, Tuple[Any, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key, version: Any) -> Optional[Tuple[bytes, str]]:
        with self._lock:
            got = self._d.get(key)
            if got is None or got[0] != version:
                return None
            self._d.move_to_end(key)
            return got[1], got[2]

    def put(self, key: Key, version: Any, body: bytes) -> Tuple[bytes, str]:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        with self._lock:
            self._d[key] = (version, body, etag)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return body, etag


def etag_matches(header: Optional[str], etag: str) -> bool:
    """If-None-Match: a list of tags, weak or strong, or '*'."""
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    tags = [t[2:] if t.startswith("W/") else t for t in tags]
    return "*" in tags or etag in tags
