"""Posting measurements: partial acceptance, idempotent on (target, run_id, key), jobs completed.

Each item is validated alone; the valid ones are stored in one transaction together with the
refreshed LUT entries (``store.entries``) and the completed jobs (``store.jobs``), so nothing
accepted is lost and nothing half-written is visible. Counts come from ``INSERT ... RETURNING``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from pydantic import ValidationError
from sqlalchemy import Connection

from lut_server import plans, staleness, validation_jobs, validations
from lut_server.store import entries, jobs, measurements, registry
from lut_server.store.devices import ensure_device
from lut_server.store.registry import ensure_ops, ensure_target, op_row
from lut_server.tokens import check_device_name
from lut_server.util import BadInput, bounded_json, clean_text, dump_json, now
from lutcore.ops import spec_from_dict
from lutcore.records import Measurement, MeasurementBatch

MIN_MS, MAX_MS = 1e-6, 1e7  # 1 ns .. ~2.8 h: anything outside is a unit or clock error


def describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        msg = str(err.get("msg", "")).replace("Value error, ", "")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _item_key(raw: Any) -> Any:
    try:
        key = raw["op"]["key"]
        return key if isinstance(key, str) and len(key) <= 2048 else None
    except (TypeError, KeyError, IndexError):
        return None


def check_item(raw: Any, batch_size: int) -> Tuple[Measurement, Dict[str, Any]]:
    """The parsed measurement and its stored extras, or ValueError with the reason."""
    if not isinstance(raw, dict):
        raise ValueError("item must be a Measurement object")
    try:
        m = Measurement.model_validate(raw)
    except ValidationError as e:
        raise ValueError(describe(e)) from None
    spec = spec_from_dict(m.op.spec)
    if spec.batch != batch_size:
        raise ValueError(f"op batch {spec.batch} differs from the target's batch {batch_size}")
    st = m.stats
    for name in ("median_ms", "mean_ms", "min_ms", "p10_ms", "p90_ms", "std_ms"):
        v = getattr(st, name)
        if name != "std_ms" and not MIN_MS <= v <= MAX_MS:
            raise ValueError(f"stats.{name}={v!r} is outside [{MIN_MS}, {MAX_MS}] ms")
        if name == "std_ms" and v > MAX_MS:
            raise ValueError(f"stats.std_ms={v!r} exceeds {MAX_MS} ms")
    if m.job_id is not None and not 0 < m.job_id < 2**62:
        raise ValueError(f"job_id={m.job_id} is not a job id")
    try:
        measured_at = None if m.measured_at is None else clean_text(m.measured_at, "measured_at", 64)
        extras = {"stats": dump_json(st.model_dump(), "stats"), "env": bounded_json(m.env, "env"),
                  "measured_at": measured_at, "row": op_row(spec), "spec": spec}
    except BadInput as e:
        raise ValueError(str(e)) from None
    return m, extras


def ingest(conn: Connection, batch: MeasurementBatch, actor: str, max_attempts: int = 3) -> Dict[str, Any]:
    """Store a batch (the caller checked the token against the board and class). ``actor`` is the
    job holder name of the caller: a ``job_id`` held by someone else refuses the batch (JobConflict).
    A calibration the batch makes stale gets a validate job that refits it (``staleness``)."""
    check_device_name(batch.device_name, "device_name")
    run_id = clean_text(batch.run_id, "run_id", 64)
    bounded_json(batch.fingerprint, "fingerprint")
    rejected: List[Dict[str, Any]] = []
    good: List[Tuple[int, Measurement, Dict[str, Any]]] = []
    seen = set()
    duplicates = 0
    for i, raw in enumerate(batch.items):
        try:
            m, extras = check_item(raw, batch.target.batch)
        except ValueError as e:
            rejected.append({"index": i, "key": _item_key(raw), "reason": str(e)})
            continue
        if m.op.key in seen:
            duplicates += 1
            continue
        seen.add(m.op.key)
        good.append((i, m, extras))

    target_id = ensure_target(conn, batch.target)
    if not good:
        return _none(duplicates, rejected, registry.lut_version(conn, target_id))
    jobs.check_completable(conn, target_id, [m.job_id for _, m, _ in good if m.job_id is not None], actor)

    digest = ensure_device(conn, batch.device_name, batch.target.device, batch.fingerprint)
    ids = ensure_ops(conn, [x["spec"] for _, _, x in good])
    t = now()
    rows = [{"target_id": target_id, "op_id": ids[m.op.key], "run_id": run_id, "device": batch.device_name,
             "fingerprint_digest": digest, "median_ms": m.stats.median_ms, "mean_ms": m.stats.mean_ms,
             "p10_ms": m.stats.p10_ms, "p90_ms": m.stats.p90_ms, "stats": x["stats"],
             "measured_at": x["measured_at"], "env": x["env"], "job_id": m.job_id, "received_at": t}
            for _, m, x in good]
    inserted = measurements.insert(conn, rows)
    duplicates += len(rows) - len(inserted)
    if not inserted:
        return _none(duplicates, rejected, registry.lut_version(conn, target_id))
    new = set(inserted)
    watched = staleness.affected(conn, target_id, batch.target.id, {k for k, i in ids.items() if i in new})
    entries.refresh_entries(conn, target_id, inserted)
    jobs.complete_ops(conn, target_id, inserted, actor, t)
    plans.after_measurements(conn, target_id, max_attempts, t)
    refits = [refit(conn, batch.target.id, rec, max_attempts) for rec in watched if _crossed(conn, target_id, rec)]
    return {"accepted": len(inserted), "duplicates": duplicates, "rejected": rejected,
            "lut_version": registry.bump_version(conn, target_id), "refit_jobs": refits}


def _crossed(conn: Connection, target_id: int, rec: Dict[str, Any]) -> bool:
    """This batch moved the calibration past the staleness tolerance (it was within it before)."""
    after = staleness.record_drift(conn, target_id, rec)
    before = rec["drift_before"]
    return after is not None and after > staleness.STALE_TOL and (before is None or before <= staleness.STALE_TOL)


def refit(conn: Connection, tid: str, rec: Dict[str, Any], max_attempts: int) -> int:
    """Queue the validate job that re-times a stale calibration's architectures and refits it."""
    from lut_server.schemas import ValidateJobIn

    names = sorted(validations.random_archs(conn, tid, rec["space"], rec["resolution"]) or rec["basis"])
    body = ValidateJobIn(target=tid, space=rec["space"], resolution=rec["resolution"], archs=",".join(names),
                         seed=int(rec.get("seed", 0)), calibrate=True, fit_share=float(rec.get("fit_share", 0.5)))
    return int(validation_jobs.enqueue(conn, body, max_attempts)["id"])


def _none(duplicates: int, rejected: List[Dict[str, Any]], version: int) -> Dict[str, Any]:
    return {"accepted": 0, "duplicates": duplicates, "rejected": rejected, "lut_version": version}
