"""Export documents (schema nas-lut/1) for a space, with deterministic made-up timings."""

from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterable, Optional

TARGET = "cpu-x86/pytorch-cpu/fp32@threads=1"


def fake_ms(key: str) -> float:
    """A stable positive time per key, in ms."""
    return 0.05 + int(hashlib.sha256(key.encode()).hexdigest()[:6], 16) / 0xFFFFFF


def stats(ms: float) -> Dict[str, Any]:
    return {
        "median_ms": ms,
        "mean_ms": ms * 1.01,
        "std_ms": ms * 0.02,
        "min_ms": ms * 0.95,
        "p10_ms": ms * 0.97,
        "p90_ms": ms * 1.04,
        "n": 30,
    }


def export_doc(
    space: Any,
    target: str = TARGET,
    drop: Iterable[str] = (),
    lut_version: int = 3,
    calibration: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    dropped = set(drop)
    entries = []
    for key, spec in space.unique_ops().items():
        if key in dropped:
            continue
        ms = fake_ms(key)
        entries.append(
            {
                "key": key,
                "spec": spec.to_dict(),
                "macs": spec.macs(),
                "params": spec.params(),
                "value_ms": ms,
                "spread_pct": 1.0,
                "n_runs": 1,
                "measurements": [
                    {
                        "run_id": "run-0001",
                        "device": "cpu-01",
                        "fingerprint_digest": "abc",
                        "stats": stats(ms),
                        "measured_at": "2026-11-23T12:00:00Z",
                        "env": {},
                    }
                ],
            }
        )
    t: Dict[str, Any] = {"id": target, "target": {}, "lut_version": lut_version, "entries": entries}
    if calibration is not None:
        t["calibration"] = calibration
    return {"schema": "nas-lut/1", "exported_at": "2026-11-23T12:00:00Z", "targets": [t], "devices": []}


def measurement_batch(
    space: Any, target: Any, device_name: str, run_id: str, drop: Iterable[str] = ()
) -> Dict[str, Any]:
    """A MeasurementBatch body timing every op of ``space`` (but ``drop``) at ``fake_ms``."""
    dropped = set(drop)
    items = [
        {"op": {"key": k, "spec": s.to_dict()}, "stats": stats(fake_ms(k)), "env": {}}
        for k, s in space.unique_ops().items()
        if k not in dropped
    ]
    return {
        "run_id": run_id,
        "target": target.model_dump(),
        "device_name": device_name,
        "fingerprint": {"test": "search_client"},
        "items": items,
    }


TINY = {
    "name": "client-tiny",
    "input": [3, 32, 32],
    "catalogue": {
        "name": "tiny",
        "skip_policy": "identity",
        "candidates": [
            {"name": "k3_e1", "kernel": 3, "expansion": 1},
            {"name": "k3_e3", "kernel": 3, "expansion": 3},
            {"name": "skip"},
        ],
    },
    "stem": [{"op": "conv", "c_out": 8, "kernel": 3, "stride": 2, "act": "relu"}],
    "layers": [{"c_out": 8, "stride": 1}, {"c_out": 16, "stride": 2}, {"c_out": 16, "stride": 1}],
    "head": [{"op": "conv", "c_out": 32, "kernel": 1}, {"op": "pool_fc", "classes": 10}],
}
