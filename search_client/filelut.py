"""An exported LUT (schema ``nas-lut/1``, from ``GET /export``) read into per-target value tables."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from search_client.errors import ClientError

SCHEMA = "nas-lut/1"
METRICS = ("median_ms", "mean_ms", "p10_ms", "p90_ms")


@dataclasses.dataclass
class TargetTable:
    """One target's entries by key, as the export document holds them."""

    id: str
    lut_version: Optional[int]
    entries: Dict[str, Mapping[str, Any]]
    calibration: Optional[Mapping[str, Any]] = None

    def value(self, key: str, metric: str = "median_ms") -> Optional[float]:
        """As the server derives it: ``value_ms`` (median of run medians) for the median; the mean of run
        means for ``mean_ms``; the median of run percentiles for ``p10_ms``/``p90_ms``."""
        if metric not in METRICS:
            raise ClientError(f"metric {metric!r} must be one of {', '.join(METRICS)}")
        e = self.entries.get(key)
        if e is None:
            return None
        if metric == "median_ms":
            v = e.get("value_ms")
            return None if v is None else float(v)
        runs = [m["stats"][metric] for m in e.get("measurements", []) if metric in m.get("stats", {})]
        if not runs:
            return None
        return float(statistics.fmean(runs) if metric == "mean_ms" else statistics.median(runs))

    def values(self, keys: List[str], metric: str = "median_ms") -> Dict[str, Optional[float]]:
        return {k: self.value(k, metric) for k in keys}


def parse_export(doc: Mapping[str, Any], where: str = "export document") -> Dict[str, TargetTable]:
    """Target id -> table; errors say which field of the document is wrong."""
    if not isinstance(doc, Mapping):
        raise ClientError(f"{where}: not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise ClientError(f"{where}: schema is {doc.get('schema')!r}, expected {SCHEMA!r} (a GET /export document)")
    tables: Dict[str, TargetTable] = {}
    for i, t in enumerate(doc.get("targets") or []):
        try:
            tid = str(t["id"])
            entries = {str(e["key"]): e for e in t.get("entries", [])}
        except (KeyError, TypeError) as e:
            raise ClientError(f"{where}: targets[{i}] lacks {e}") from None
        tables[tid] = TargetTable(tid, t.get("lut_version"), entries, t.get("calibration") or doc.get("calibration"))
    return tables


def load_export(path: Union[str, Path]) -> Dict[str, TargetTable]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as e:
        raise ClientError(f"cannot read LUT file {p}: {e.strerror}") from None
    except ValueError as e:
        raise ClientError(f"LUT file {p} is not valid JSON: {e}") from None
    return parse_export(doc, str(p))
