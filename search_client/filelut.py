"""An exported LUT (schema ``nas-lut/1``, from ``GET /export``) read into per-target value tables.

The document is read by ``lutcore.lutdoc`` (the model every reader and writer shares), and values
follow its one aggregation rule, so a file gives the numbers the server's lookups give.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from lutcore import lutdoc
from search_client.errors import ClientError


@dataclasses.dataclass
class TargetTable:
    """One target's entries by key, as the export document holds them."""

    id: str
    lut_version: Optional[int]
    entries: Dict[str, lutdoc.Entry]
    calibration: Optional[Mapping[str, Any]] = None

    def value(self, key: str, metric: str = "median_ms") -> Optional[float]:
        """As the server derives it (``lutcore.lutdoc.aggregate``); None when the key has no entry."""
        try:
            lutdoc.check_metric(metric)
        except ValueError as e:
            raise ClientError(str(e)) from None
        entry = self.entries.get(key)
        return None if entry is None else entry.value(metric)

    def values(self, keys: List[str], metric: str = "median_ms") -> Dict[str, Optional[float]]:
        return {k: self.value(k, metric) for k in keys}


def _tables(doc: lutdoc.LutDocument) -> Dict[str, TargetTable]:
    out = {}
    for t in doc.targets:
        out[t.tid] = TargetTable(t.tid, t.lut_version, t.by_key(), t.calibration or doc.calibration)
    return out


def parse_export(doc: Mapping[str, Any], where: str = "export document") -> Dict[str, TargetTable]:
    """Target id -> table; errors say which field of the document is wrong."""
    try:
        return _tables(lutdoc.parse(dict(doc) if isinstance(doc, Mapping) else doc, where))
    except (lutdoc.DocumentError, ValueError) as e:
        raise ClientError(str(e)) from None


def load_export(path: Union[str, Path]) -> Dict[str, TargetTable]:
    try:
        return _tables(lutdoc.load(path))
    except (lutdoc.DocumentError, ValueError) as e:
        raise ClientError(str(e)) from None
