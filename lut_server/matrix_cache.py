"""Rendered cost matrices, kept as the exact JSON bytes served, with an ETag.

Keyed on what names the answer: (target, space name, definition digest, resolution, metric); valid
for one version, (target's ``lut_version``, calibration stamp), which every change of an entry or a
calibration moves. Nothing is keyed on object identity, so two equal definitions share an entry.

Each entry also remembers when its version was last checked against the database and the request
words (target, space name, resolution, metric) it was asked for: within ``FRESH_S`` of a check,
``recent`` answers those words without the database (``api.matrix_fast``); past it one request
checks again while the others are answered until ``STALE_S``, so a worker serves a matrix at most
``STALE_S`` older than the newest write another worker made.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any, Dict, Optional, Tuple

Key = Tuple[str, str, str, str, str]
Alias = Tuple[str, str, Optional[str], str]  # the request's words: target, space name, resolution, metric
FRESH_S = 0.25
STALE_S = 2 * FRESH_S  # past FRESH_S one request re-checks; the others get the bytes until then


class MatrixCache:
    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._d: OrderedDict[Key, Tuple[Any, bytes, str]] = OrderedDict()
        self._checked: Dict[Key, float] = {}
        self._refreshing: Dict[Key, float] = {}
        self._alias: Dict[Alias, Key] = {}
        self._lock = threading.Lock()

    def get(self, key: Key, version: Any, alias: Optional[Alias] = None) -> Optional[Tuple[bytes, str]]:
        """The entry if it is of ``version`` (just read from the database: it counts as a check)."""
        with self._lock:
            got = self._d.get(key)
            if got is None or got[0] != version:
                return None
            self._d.move_to_end(key)
            self._mark(key, alias)
            return got[1], got[2]

    def recent(self, alias: Alias, fresh_s: float = FRESH_S, stale_s: float = STALE_S) -> Optional[Tuple[bytes, str]]:
        """The entry these request words named, if its version was checked within ``fresh_s``; past
        that, None for one caller (it goes to the route, which checks again) while the others still
        get the entry up to ``stale_s``, so 32 readers do not all queue on the database at once."""
        with self._lock:
            key = self._alias.get(alias)
            got = None if key is None else self._d.get(key)
            if got is None or key is None:
                return None
            now = time.monotonic()
            age = now - self._checked.get(key, -1e9)
            if age <= fresh_s:
                return got[1], got[2]
            started = self._refreshing.get(key)
            if started is None or now - started > stale_s:  # nobody is checking (or that check died)
                self._refreshing[key] = now
                return None
            return (got[1], got[2]) if age <= stale_s else None

    def forget_checks(self) -> None:
        """Every entry must be checked against the database again before ``recent`` serves it."""
        with self._lock:
            self._checked.clear()
            self._refreshing.clear()

    def _mark(self, key: Key, alias: Optional[Alias]) -> None:
        self._checked[key] = time.monotonic()
        self._refreshing.pop(key, None)
        if alias is not None:
            if len(self._alias) > 4 * self.size:
                self._alias.clear()
            self._alias[alias] = key

    def put(self, key: Key, version: Any, body: bytes, alias: Optional[Alias] = None) -> Tuple[bytes, str]:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        with self._lock:
            self._d[key] = (version, body, etag)
            self._d.move_to_end(key)
            self._mark(key, alias)
            while len(self._d) > self.size:
                old, _ = self._d.popitem(last=False)
                self._checked.pop(old, None)
        return body, etag


def etag_matches(header: Optional[str], etag: str) -> bool:
    """If-None-Match: a list of tags, weak or strong, or '*'."""
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    tags = [t[2:] if t.startswith("W/") else t for t in tags]
    return "*" in tags or etag in tags
