"""Builders for test payloads: op specs, measurement batches, seeded jobs."""

from __future__ import annotations

import math
import random
import uuid
from typing import Any, Dict, List, Optional

from lut_server.db import Database
from lut_server.schema import jobs
from lut_server.store.registry import ensure_ops, ensure_target, parse_target
from lut_server.util import now
from lutcore.ops import Conv, OpSpec

TARGET = "xavier/tensorrt/fp16"
TARGET_DICT = {"device": "xavier", "backend": "tensorrt", "precision": "fp16", "batch": 1, "settings": {}}
DEVICE = "xavier-01"
DEVICE_CLASS = "*"  # the in-process fixture's agent posts for xavier and cpu-x86 targets alike
ADMIN_SECRET = "lut_admin_T3stS3cr3t-9fQ2xLp7Vw4Rz8Kc"


def law_ms(spec: OpSpec) -> float:
    """A synthetic target's latency with a known law (a constant, a cost per MAC and per parameter,
    seeded noise of ~3%): what the predictor must recover from a measured share (issue 20's tests)."""
    noise = math.exp(random.Random(spec.key).gauss(0.0, 0.03))
    return (0.02 + 2e-9 * spec.macs() + 3e-9 * spec.params()) * noise


def conv(c_out: int, h: int = 16, w: int = 32) -> OpSpec:
    return Conv(c_in=8, h=h, w=w, c_out=c_out, stride=1, kernel=3)


def stats(median: float = 1.0, **over: Any) -> Dict[str, Any]:
    s = {"median_ms": median, "mean_ms": median * 1.02, "std_ms": median * 0.01, "min_ms": median * 0.9,
         "p10_ms": median * 0.95, "p90_ms": median * 1.1, "n": 50}
    s.update(over)
    return s


def item(spec: OpSpec, median: float = 1.0, job_id: Optional[int] = None, **stat_over: Any) -> Dict[str, Any]:
    return {"op": {"key": spec.key, "spec": spec.to_dict()}, "stats": stats(median, **stat_over), "job_id": job_id,
            "measured_at": "2024-05-01T12:00:00Z", "env": {"temp_c": 40}}


def batch(items: List[Dict[str, Any]], run_id: Optional[str] = None, device: str = DEVICE,
          target: Optional[Dict[str, Any]] = None, fingerprint: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"run_id": run_id or uuid.uuid4().hex, "target": target or TARGET_DICT, "device_name": device,
            "fingerprint": fingerprint if fingerprint is not None else {"jetpack": "5.1.2"}, "items": items}


def seed_jobs(db_url: str, n: int, target: str = TARGET) -> List[str]:
    """n queued jobs of distinct conv ops (the queue tests need more ops than one small space has)."""
    db = Database(db_url)
    db.upgrade()
    specs = [conv(c_out) for c_out in range(1, n + 1)]
    t = now()
    with db.write() as conn:
        tid = ensure_target(conn, parse_target(target))
        ids = ensure_ops(conn, specs)
        conn.execute(jobs.insert(), [{"target_id": tid, "op_id": ids[s.key], "kind": "op", "status": "queued",
                                      "priority": 0, "attempts": 0, "max_attempts": 3, "payload": "{}",
                                      "created_at": t, "updated_at": t} for s in specs])
    db.dispose()
    return [s.key for s in specs]
