"""A target's measured entries from an exported LUT (``nas-lut/1``, ``lut export`` / ``GET /export``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from lut_server.predictor.errors import PredictorError
from lutcore.errors import LutError
from lutcore.ops import OpSpec, spec_from_dict

SCHEMA = "nas-lut/1"
MAX_BYTES = 256 * 1024 * 1024


def read_doc(path: Union[str, Path]) -> Dict[str, Any]:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise PredictorError(f"{p}: larger than {MAX_BYTES >> 20} MiB; export one target (--target)")
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise PredictorError(f"cannot read {p}: {e.strerror or e}") from None
    except ValueError as e:
        raise PredictorError(f"{p} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise PredictorError(f"{p}: schema is {got!r}, expected {SCHEMA!r} (a `lut export` document)")
    return doc


Entries = List[Tuple[OpSpec, float]]


def target_entries(doc: Dict[str, Any], target: Optional[str], where: str = "LUT") -> Tuple[str, Entries]:
    """(target id, [(spec, value_ms)]) of one target; ``None`` picks the only one. Unmeasured and predicted
    entries are skipped."""
    targets = doc.get("targets")
    if not isinstance(targets, list):
        raise PredictorError(f"{where}: 'targets' must be a list")
    ids = [str(t.get("id")) for t in targets if isinstance(t, dict)]
    if target is None:
        if len(ids) != 1:
            raise PredictorError(f"{where} holds {len(ids)} targets ({', '.join(ids) or 'none'}); pass --target")
        target = ids[0]
    for t in targets:
        if isinstance(t, dict) and t.get("id") == target:
            return target, _entries(t, f"{where}: target {target}")
    raise PredictorError(f"{where}: no target {target!r} (targets: {', '.join(ids) or 'none'})")


def _entries(t: Dict[str, Any], where: str) -> Entries:
    out: Entries = []
    for i, e in enumerate(t.get("entries") or []):
        try:
            spec = spec_from_dict(e["spec"])
            v = e.get("value_ms")
        except (KeyError, TypeError, AttributeError):
            raise PredictorError(f"{where}: entries[{i}] lacks a spec") from None
        except LutError as err:
            raise PredictorError(f"{where}: entries[{i}].spec: {err}") from None
        if v is None or e.get("predicted"):
            continue  # unmeasured, or a prediction (lut export --missing predict): not a measurement
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise PredictorError(f"{where}: entries[{i}] ({spec.key}) value_ms={v!r} is not a positive number")
        out.append((spec, float(v)))
    return out
