"""Rendered cost matrices, kept as the exact JSON bytes served, with an ETag.

Keyed on what names the answer: (target, space name, definition digest, resolution, metric, missing
mode: measured cells only, or missing ones predicted too); valid
for one version, (target's ``lut_version``, calibration stamp), which every change of an entry or a
calibration moves. Nothing is keyed on object identity, so two equal definitions share an entry.

Each entry also remembers when its version was last checked against the database and the request
words (target, space name, resolution, metric) it was asked for. A worker's ``MatrixRefresher``
(``matrix_refresh.py``) checks every entry's version every ``FRESH_S`` off the request path; within
``STALE_S`` of a check, ``recent`` answers those words without the database (``api.matrix_fast``),
so a worker serves a matrix at most ``STALE_S`` older than the newest write another worker made.
Past ``STALE_S`` (the refresher is behind or gone) requests go to the route, which checks itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

Key = Tuple[str, ...]  # target, space name, digest, resolution, metric, missing mode
# the request's words: target, space name, resolution, metric (+ the missing mode unless "report")
Alias = Tuple[Optional[str], ...]
FRESH_S = 0.25  # how often a worker's refresher checks the versions of its cached matrices
STALE_S = 4 * FRESH_S  # never served from the cache past this age of its last check


def alias(target: str, space: str, resolution: Optional[str], metric: str, missing: str = "report") -> Alias:
    """The request words of a named matrix; the default mode keeps the words it always had."""
    words: Alias = (target, space, resolution, metric)
    return words if missing == "report" else words + (missing,)


class MatrixCache:
    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._d: OrderedDict[Key, Tuple[Any, bytes, str]] = OrderedDict()
        self._checked: Dict[Key, float] = {}
        self._filling: Dict[Key, threading.Lock] = {}
        self.wake: Optional[Callable[[], None]] = None  # the refresher's, to check at once after a write
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

    def recent(self, alias: Alias, stale_s: float = STALE_S) -> Optional[Tuple[bytes, str]]:
        """The entry these request words named, if its version was checked within ``stale_s``."""
        with self._lock:
            key = self._alias.get(alias)
            got = None if key is None else self._d.get(key)
            if got is None or key is None:
                return None
            age = time.monotonic() - self._checked.get(key, -1e9)
            return (got[1], got[2]) if age <= stale_s else None

    def versions(self) -> List[Tuple[Key, Any]]:
        """Every entry's key and the version its bytes are valid for: what the refresher checks."""
        with self._lock:
            return [(k, v[0]) for k, v in self._d.items()]

    def confirm(self, key: Key, version: Any, checked_at: float) -> None:
        """The database says ``key`` is at ``version`` as of ``checked_at`` (monotonic, taken before
        the query): the bytes stay servable if they are of that version, else they are dropped."""
        with self._lock:
            got = self._d.get(key)
            if got is None:
                return
            if got[0] != version:
                del self._d[key]
                self._checked.pop(key, None)
            elif checked_at > self._checked.get(key, -1e9):
                self._checked[key] = checked_at

    def fill(self, key: Key, version: Any, alias: Optional[Alias], render: Callable[[], bytes]) -> Tuple[bytes, str]:
        """The entry of ``version``, rendered by one caller while the others with the same key wait
        for it: a cold worker, or one whose matrix a write moved, renders it once, not once per
        reader (which on a busy worker held every reader for a herd of identical renders)."""
        with self._lock:
            gate = self._filling.setdefault(key, threading.Lock())
        with gate:
            hit = self.get(key, version, alias)
            if hit is not None:
                return hit
            out = self.put(key, version, render(), alias)
        with self._lock:
            self._filling.pop(key, None)
        return out

    def forget_checks(self) -> None:
        """Every entry must be checked against the database again before ``recent`` serves it."""
        with self._lock:
            self._checked.clear()
        if self.wake is not None:
            self.wake()

    def _mark(self, key: Key, alias: Optional[Alias]) -> None:
        self._checked[key] = time.monotonic()
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
