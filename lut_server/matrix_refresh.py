"""Each worker's background check of its cached cost matrices against the database.

The version check used to ride on a request: past the fresh window one reader went through the
route and the database while the others waited on it or queued behind it, which set the tail
latency of every reader on a busy worker. Here one thread per worker reads each cached matrix's
version every ``matrix_cache.FRESH_S`` (a query per distinct (target, space, resolution)) and keeps
the bytes servable or drops them; requests never wait on it. If it falls behind or dies, entries
age past ``STALE_S`` and requests go to the route, which checks on its own: slower, never wrong.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Optional, Tuple

from lut_server.db import Database
from lut_server.matrix_cache import FRESH_S, MatrixCache

log = logging.getLogger("lut_server.matrix")


class MatrixRefresher:
    def __init__(self, cache: MatrixCache, db: Database, interval_s: float = FRESH_S) -> None:
        self.cache = cache
        self.db = db
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self.cache.wake = self._wake.set
        self._thread = threading.Thread(target=self._run, name="matrix-refresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.cache.wake = None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check_once()
                failures = 0
            except Exception as e:  # a database hiccup: requests fall back to the route meanwhile
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("cost-matrix version check failed (%d in a row): %s", failures, e)

    def check_once(self) -> int:
        """Check every cached matrix once; the number of entries checked."""
        entries = self.cache.versions()
        if not entries:
            return 0
        from lut_server import spaces
        from lut_server.store import calibrations

        started = time.monotonic()
        seen: Dict[Tuple[str, str, str], Any] = {}
        digests: Dict[Tuple[str, str], Optional[str]] = {}
        with self.db.read() as conn:
            for key, _version in entries:
                tid, name, digest, res = key[:4]
                words = (tid, name, res)
                if words not in seen:
                    seen[words] = calibrations.matrix_version(conn, tid, name, res)
                if (name, res) not in digests:  # a custom space deleted and registered again differs
                    try:
                        digests[(name, res)] = spaces.digest(spaces.resolve(conn, name, res))
                    except Exception:
                        digests[(name, res)] = None
                version = seen[words] if digests[(name, res)] == digest else ("gone",)
                self.cache.confirm(key, version, started)
        return len(entries)
