"""On-disk outbox: every result is on disk before the network sees it.

A batch is written atomically (temp file, fsync, rename) into ``pending/`` and removed
only after the server has answered 200 for it. A crash or an outage in between leaves it
there, and the next flush (this process or a restarted one) posts it again. Posting twice
is harmless: the run_id is fixed when the batch is spooled and the server ignores a
(run_id, key) it already holds, so each measurement is stored exactly once.

A batch refused with 409 because one of its items names a job another board now holds (this
board's lease ran out and the job was reclaimed) is posted once more without its job ids: the
measurements are still valid, and the server completes queued jobs by op while a job another
board holds stays with its holder. The file on disk is left as it was until that post succeeds.

Layout::

    DIR/pending/<time_ns>-<run_id>-<seq>.json   batches not yet acknowledged
    DIR/dead/...                                batches the server refused as a whole (kept to inspect)
                                                (a 409 over job ids: only if refused again without them)
    DIR/sent.jsonl                              one line per acknowledged batch (audit trail)
    DIR/rejected.jsonl                          items the server refused, with its reason
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from profiler_agent.api import LutApi, RequestRejected, ServerUnavailable
from profiler_agent.paths import cache_path

try:  # POSIX: keeps two processes sharing a spool from flushing it at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def default_spool_dir() -> Path:
    """``$LUT_SPOOL``, else ``$XDG_CACHE_HOME/profiler-agent/spool`` (``~/.cache/...``)."""
    return cache_path("LUT_SPOOL", "spool")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) against other processes (POSIX flock)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(str(path), "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old content or all of the new, never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, str(path))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _append_line(path: Path, record: Dict[str, Any]) -> None:
    with open(str(path), "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _count_job_ids(batch: Dict[str, Any]) -> int:
    """How many items name a job (what dropping the job ids would drop)."""
    items = batch.get("items")
    if not isinstance(items, list):
        return 0
    return sum(1 for it in items if isinstance(it, dict) and it.get("job_id") is not None)


def _without_job_ids(batch: Dict[str, Any]) -> Dict[str, Any]:
    """A copy that completes by op only, leaving the caller's batch (and the file) untouched."""
    items = [dict(it, job_id=None) if isinstance(it, dict) else it for it in batch.get("items", [])]
    return dict(batch, items=items)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class FlushResult:
    """What one flush achieved; ``error`` is set when the server could not be reached."""

    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    dead: int = 0
    pending: int = 0
    jobs_dropped: int = 0  # job ids left out of batches whose jobs other boards had reclaimed (409)
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.pending == 0


class Spool:
    """A directory of measurement batches waiting to be acknowledged by the server."""

    def __init__(self, root: Union[str, Path], log: Optional[Callable[[str], None]] = None) -> None:
        self.root = Path(root).expanduser()
        self.pending_dir = self.root / "pending"
        self.dead_dir = self.root / "dead"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self._log = log or (lambda msg: None)
        self._seq = 0
        self._mutex = threading.Lock()

    # -- writing -----------------------------------------------------------------------
    def add(self, batch: Dict[str, Any]) -> Path:
        """Persist one MeasurementBatch dict (run_id fixed by the caller) and return its file."""
        for field in ("run_id", "target", "device_name", "items"):
            if field not in batch:
                raise ValueError(f"spool batch lacks {field!r}; it must be a MeasurementBatch dict")
        with self._mutex:
            self._seq += 1
            name = f"{time.time_ns():020d}-{batch['run_id']}-{self._seq:05d}.json"
        path = self.pending_dir / name
        atomic_write_text(path, json.dumps(batch, sort_keys=True))
        return path

    # -- reading -----------------------------------------------------------------------
    def pending(self) -> List[Path]:
        """Pending batch files, oldest first (names start with the creation time)."""
        return sorted(p for p in self.pending_dir.glob("*.json") if not p.name.startswith("."))

    def pending_items(self) -> int:
        n = 0
        for p in self.pending():
            with contextlib.suppress(OSError, ValueError):
                n += len(json.loads(p.read_text(encoding="utf-8")).get("items", []))
        return n

    # -- sending -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with file_lock(self.root / ".lock"):
            yield

    def flush(self, api: LutApi) -> FlushResult:
        """Post every pending batch, oldest first; stop at the first outage and keep the rest.

        Auth errors propagate (nothing more can be sent with that token); a batch the
        server refuses as malformed (422) moves to ``dead/`` so it cannot block the queue. A 409
        over job ids another board holds is posted again without them (``_post``) before that.
        """
        res = FlushResult()
        with self._locked():
            for path in self.pending():
                try:
                    batch = json.loads(path.read_text(encoding="utf-8"))
                except FileNotFoundError:  # another flusher sent it before we took the lock
                    continue
                except ValueError as e:
                    self._bury(path, f"unreadable spool file: {e}")
                    res.dead += 1
                    continue
                try:
                    out, dropped = self._post(api, path, batch)
                except ServerUnavailable as e:
                    res.error = str(e)
                    break
                except RequestRejected as e:
                    self._bury(path, str(e))
                    res.dead += 1
                    continue
                rejected = list(out.get("rejected", []))
                for r in rejected:
                    _append_line(self.root / "rejected.jsonl", dict(r, run_id=batch["run_id"], at=_now()))
                    self._log(f"server rejected {r.get('key')}: {r.get('reason')}")
                _append_line(
                    self.root / "sent.jsonl",
                    {
                        "file": path.name,
                        "run_id": batch["run_id"],
                        "items": len(batch.get("items", [])),
                        "accepted": out.get("accepted", 0),
                        "duplicates": out.get("duplicates", 0),
                        "rejected": len(rejected),
                        "jobs_dropped": dropped,
                        "server": api.url,
                        "at": _now(),
                    },
                )
                path.unlink()
                _fsync_dir(self.pending_dir)
                res.batches += 1
                res.accepted += int(out.get("accepted", 0))
                res.duplicates += int(out.get("duplicates", 0))
                res.rejected.extend(rejected)
                res.jobs_dropped += dropped
        res.pending = len(self.pending())
        return res

    def _post(self, api: LutApi, path: Path, batch: Dict[str, Any]) -> Tuple[Dict[str, Any], int]:
        """The server's answer and the number of job ids dropped to get it.

        A 409 over items naming jobs means this board's lease ran out and another board took the
        job over; the measurements are still good, so the batch goes once more without job ids (same
        run_id: the refused post stored nothing). Refused again, RequestRejected carries both reasons.
        """
        try:
            return api.post_measurements(batch) or {}, 0
        except RequestRejected as e:
            n = _count_job_ids(batch)
            if e.status != 409 or n == 0:
                raise
            first = e
        try:
            out = api.post_measurements(_without_job_ids(batch)) or {}
        except RequestRejected as e:
            raise RequestRejected(f"{first}\nposted again without its {n} job id(s): {e}", status=e.status,
                                  detail=e.detail, method=e.method, url=e.url) from None
        self._log(f"spool: {path.name}: lease lost to another board ({first.detail or first}); "
                  f"measurements kept, {n} job id(s) dropped, their jobs left to their holders")
        return out, n

    def _bury(self, path: Path, reason: str) -> None:
        self.dead_dir.mkdir(parents=True, exist_ok=True)
        os.replace(str(path), str(self.dead_dir / path.name))
        atomic_write_text(self.dead_dir / (path.name + ".error.txt"), reason + "\n")
        self._log(f"spool: {path.name} refused by the server, kept in {self.dead_dir}: {reason}")
