"""Offline mode: profile a whole space with no server, upload the file later.

The run file is JSONL: a header line (run_id, target, device, fingerprint, space) and then
one Measurement per line. Lines are appended chunk by chunk and fsynced, so an interrupted
run keeps what it measured and ``--resume`` continues it under the same run_id. ``sync``
posts the measurements under that run_id; the server ignores a (run_id, key) it already
holds, so syncing the same file again stores nothing twice.
"""

from __future__ import annotations

import datetime
import json
import os
import random
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from lutcore.ops import OpSpec
from lutcore.records import Measurement, Target
from profiler_agent.api import LutApi
from profiler_agent.daemon import make_batch

RUN_SCHEMA = "profiler-agent-run/1"


class RunFileError(ValueError):
    """A run file is not what ``profile`` writes; the message names the line."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def agent_version() -> str:
    """The installed distribution's version (the core's when running from a source tree)."""
    try:
        from importlib.metadata import version

        return version("nas-lut")
    except Exception:  # noqa: BLE001 - not installed: fall back to the source tree's
        import lutcore

        return lutcore.__version__


def make_header(
    run_id: str,
    target: Target,
    device_name: str,
    fingerprint: Dict[str, Any],
    space: str,
    resolution: str,
    n_ops: int,
    versions: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    return {
        "schema": RUN_SCHEMA,
        "run_id": run_id,
        "target": target.model_dump(mode="json"),
        "target_id": target.id,
        "device_name": device_name,
        "device_class": target.device,
        "fingerprint": fingerprint,
        "space": space,
        "resolution": resolution,
        "ops": n_ops,
        "versions": dict(versions or {}),
        "agent_version": agent_version(),
        "created_at": _now(),
    }


def read_run(path: Union[str, Path]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """Header and measurement dicts of a run file; a torn last line (a crash mid-write) is ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such run file") from None
    if not lines:
        raise RunFileError(f"{path}: empty; a run file starts with a header line")
    try:
        header = json.loads(lines[0])
    except ValueError as e:
        raise RunFileError(f"{path}:1: header is not JSON ({e})") from None
    if not isinstance(header, dict) or header.get("schema") != RUN_SCHEMA:
        raise RunFileError(f"{path}:1: not a profiler-agent run file (expected schema {RUN_SCHEMA!r})")
    for field in ("run_id", "target", "device_name"):
        if field not in header:
            raise RunFileError(f"{path}:1: header lacks {field!r}")
    items: List[Dict[str, Any]] = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as e:
            if i == len(lines):  # torn tail from an interrupted write
                break
            raise RunFileError(f"{path}:{i}: not JSON ({e})") from None
    return header, items


def _append(path: Path, records: Sequence[Dict[str, Any]]) -> None:
    with open(str(path), "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line (a crash mid-write) so that appended lines start on a line of their own."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(str(path), "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _chunks(xs: Sequence[OpSpec], n: int) -> Iterator[List[OpSpec]]:
    for i in range(0, len(xs), n):
        yield list(xs[i : i + n])


def profile_ops(
    make_session: Callable[[Callable[[int, int, str], None]], Any],
    ops: Dict[str, OpSpec],
    out: Union[str, Path],
    header: Dict[str, Any],
    resume: bool = False,
    chunk: int = 32,
    seed: int = 0,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> Tuple[Dict[str, Any], List[Measurement]]:
    """Time every op of ``ops`` and write the run file ``out``; returns its header and measurements.

    ``make_session(progress_cb)`` builds the ProfileSession (the callback maps its counts onto
    the whole run). Ops are shuffled once (so slow families do not cluster in time) and timed
    in chunks of ``chunk``; each chunk's results are appended before the next starts. With
    ``resume`` an existing file's header (and run_id) is kept and its ops are not timed again.
    """
    out = Path(out)
    done_keys = set()  # type: set
    measured: List[Measurement] = []
    if out.exists() and resume:
        old, items = read_run(out)
        for field, what in (("target_id", "target"), ("space", "space"), ("resolution", "resolution")):
            if old.get(field) != header.get(field):
                raise RunFileError(
                    f"{out}: --resume continues a run of the same {what}, but this file's is {old.get(field)} "
                    f"and this run's is {header.get(field)}; nothing was written (pass another -o)"
                )
        header = old
        _drop_torn_tail(out)
        for it in items:
            m = Measurement.model_validate(it)
            done_keys.add(m.op.key)
            measured.append(m)
    elif out.exists():
        raise RunFileError(f"{out} exists; pass --resume to continue it or choose another -o")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        _append(out, [header])
    todo = [spec for key, spec in sorted(ops.items()) if key not in done_keys]
    random.Random(seed).shuffle(todo)
    total = len(ops)
    base = len(done_keys)

    def relay(done: int, _total: int, key: str) -> None:
        if progress is not None:
            progress(min(total, base + done), total, key)

    session = make_session(relay)
    if progress is not None:
        progress(base, total, "")
    for part in _chunks(todo, max(1, chunk)):
        results = session.run(part)
        _append(out, [m.model_dump(mode="json", exclude_none=True) for m in results])
        measured.extend(results)
        base += len(part)
    if progress is not None and not todo:
        progress(total, total, "")
    return header, measured


def sync_run(
    path: Union[str, Path],
    api: LutApi,
    batch_size: int = 200,
    device_name: Optional[str] = None,
    log: Callable[[str], None] = lambda msg: None,
) -> Dict[str, Any]:
    """Upload a run file; safe to repeat (the server keys measurements by run_id and op key)."""
    header, items = read_run(path)
    name = device_name or header["device_name"]
    target = Target.model_validate(header["target"])
    fp = header.get("fingerprint") or {}
    reg = api.register_device(name, target.device, fp)
    if reg and reg.get("changed"):
        log(f"device {name}: fingerprint differs from the one registered before")
    totals: Dict[str, Any] = {"items": len(items), "accepted": 0, "duplicates": 0, "rejected": [], "batches": 0}
    for i in range(0, len(items), batch_size):
        part = items[i : i + batch_size]
        batch = make_batch(header["run_id"], target, name, fp, [])
        batch["items"] = part
        res = api.post_measurements(batch) or {}
        totals["batches"] += 1
        totals["accepted"] += int(res.get("accepted", 0))
        totals["duplicates"] += int(res.get("duplicates", 0))
        for r in res.get("rejected", []):
            r = dict(r)
            if "index" in r:
                r["index"] = int(r["index"]) + i
            totals["rejected"].append(r)
        totals["lut_version"] = res.get("lut_version")
    totals["run_id"] = header["run_id"]
    totals["target"] = target.id
    return totals
