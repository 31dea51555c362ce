"""The ``nas-lut/1`` export document (docs/api.md, "Export document") as one pydantic model.

The server writes it (``GET /export``, ``lut export``) and reads it (``POST /import``, ``lut
import``); the search client and the agent read it offline. Every one of them goes through
``parse``/``load`` here, so a document one accepts the others accept, and a bad one is refused
with the path of the field at fault (``targets[0].entries[3].measurements[1].stats: ...``).

Compatibility: exports written before ``mean_ms``/``p10_ms``/``p90_ms``/``n_devices`` per entry,
``quarantined`` per measurement, and ``in_context``/``env`` per validation read as before (the
missing entry figures are recomputed from the measurements by the one rule in ``aggregate``).

Predicted entries (issue 20, ``lut export --missing predict``) carry ``predicted: true`` and their
90% interval (``lo_ms``, ``hi_ms``) and no measurements. Readers never take them for measured ones:
``by_key``/``values`` leave them out, ``predicted_entries`` gives them, and import stores nothing
for them. Documents without the field read as before (every entry measured).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lutcore.errors import LutError
from lutcore.lutdoc.aggregate import ENTRY_FIELD, Run, aggregate, check_metric
from lutcore.records import Target, TimingStats

SCHEMA = "nas-lut/1"
# An entry's figures, as the server stores them and ``POST /lookup`` and the export show them.
FIGURES = ("value_ms", "mean_ms", "p10_ms", "p90_ms", "n_runs", "n_devices", "spread_pct")


class DocumentError(LutError, ValueError):
    """The document is not a valid ``nas-lut/1`` export; the message names the field."""


class _Part(BaseModel):
    """Unknown fields are kept (lossless) so a newer writer's additions survive an older reader."""

    model_config = ConfigDict(extra="allow")

    def dump(self) -> Dict[str, Any]:
        """The JSON form: exactly the fields that were given, so a document round-trips unchanged."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Measurement(_Part):
    """One run's timing of one op on one board."""

    run_id: str = Field(min_length=1)
    device: str = Field(min_length=1)
    fingerprint_digest: Optional[str] = None
    stats: TimingStats
    measured_at: Optional[str] = None
    env: Dict[str, Any] = Field(default_factory=dict)
    quarantined: bool = Field(False, description="left out of the entry by an admin (exported, not counted)")

    def run(self) -> Run:
        s = self.stats
        return Run(s.median_ms, s.mean_ms, s.p10_ms, s.p90_ms, self.device)


class Entry(_Part):
    """One op's LUT entry on a target, with every run behind it."""

    key: str = Field(min_length=1)
    spec: Dict[str, Any]
    macs: Optional[int] = None
    params: Optional[int] = None
    value_ms: Optional[float] = None
    mean_ms: Optional[float] = None
    p10_ms: Optional[float] = None
    p90_ms: Optional[float] = None
    spread_pct: Optional[float] = None
    n_runs: Optional[int] = None
    n_devices: Optional[int] = None
    measurements: List[Measurement] = Field(default_factory=list)
    predicted: bool = Field(False, description="nobody measured it: value_ms is the predictor's, within lo_ms..hi_ms")
    lo_ms: Optional[float] = Field(None, ge=0, description="a predicted entry's 90% interval, low end")
    hi_ms: Optional[float] = Field(None, ge=0, description="a predicted entry's 90% interval, high end")

    @model_validator(mode="after")
    def _marked(self) -> Entry:
        if not self.predicted:
            if self.lo_ms is not None or self.hi_ms is not None:
                raise ValueError("lo_ms/hi_ms belong to a predicted entry (predicted: true)")
            return self
        if self.measurements:
            raise ValueError("a predicted entry has no measurements")
        lo, v, hi = self.lo_ms, self.value_ms, self.hi_ms
        if lo is None or v is None or hi is None or not (math.isfinite(hi) and lo <= v <= hi):
            raise ValueError("a predicted entry needs finite lo_ms <= value_ms <= hi_ms")
        return self

    def counted(self) -> List[Run]:
        return [m.run() for m in self.measurements if not m.quarantined]

    def figures(self, metric: str = "median_ms") -> Dict[str, Any]:
        """The entry as ``POST /lookup`` shows one: ``value_ms`` (the metric), the median, mean and
        percentiles, run and board counts and the spread; {} when nothing counts."""
        runs = self.counted()
        derived: Dict[str, Any] = aggregate(runs) if runs else {}
        out = {f: getattr(self, f) if getattr(self, f) is not None else derived.get(f) for f in FIGURES}
        if out["value_ms"] is None:
            return {}
        return {**out, "median_ms": out["value_ms"], "value_ms": self.value(metric)}

    def value(self, metric: str = "median_ms") -> Optional[float]:
        """The metric as the server derives it: the writer's figure when the document has it, else the
        one rule (``aggregate``) over the counted runs; None when nothing counts."""
        field = ENTRY_FIELD[check_metric(metric)]
        given = getattr(self, field)
        if given is not None:
            return float(given)
        runs = self.counted()
        return float(aggregate(runs)[field]) if runs else None


class Validation(_Part):
    """One architecture timed end to end beside the LUT's prediction (``POST /validations``)."""

    model_config = ConfigDict(extra="forbid")

    space: str
    resolution: str
    arch: str
    kind: str
    run_id: str
    device_name: str
    lut_version: Optional[int] = None
    predicted_ms: float
    measured_ms: float
    n_ops: int = 0
    rounds: List[float] = Field(default_factory=list)
    created_at: Optional[str] = None
    in_context: Optional[Dict[str, float]] = None
    env: Optional[Dict[str, Any]] = None


class CalibrationRecord(_Part):
    """A stored calibration with its fit figures; ``calibration`` holds the coefficients a, b, c."""

    space: str
    resolution: str
    calibration: Dict[str, Any]
    lut_version: Optional[int] = None
    created_at: Optional[str] = None

    @field_validator("calibration")
    @classmethod
    def _finite(cls, coef: Dict[str, Any]) -> Dict[str, Any]:
        for k in ("a", "b", "c"):
            x = coef.get(k, 0.0)
            if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
                raise ValueError(f"{k} must be a finite number")
        return coef


class Device(_Part):
    name: str
    device_class: str
    fingerprint: Optional[Dict[str, Any]] = None
    fingerprint_digest: Optional[str] = None
    history: Optional[List[Dict[str, Any]]] = None


class TargetLut(_Part):
    """One target's LUT: its entries, and the validations and calibrations of its spaces."""

    id: Optional[str] = None
    target: Optional[Dict[str, Any]] = None  # the Target record; derived from ``id`` when absent
    lut_version: Optional[int] = None
    entries: List[Entry]
    validations: Optional[List[Validation]] = None
    calibrations: Optional[List[CalibrationRecord]] = None
    calibration: Optional[Dict[str, Any]] = Field(
        None, description='{"space@HxW": {a, b, c, ...}} derived from calibrations (what the search client applies), '
                          'or one {a, b, c} for every space')

    @model_validator(mode="after")
    def _named(self) -> TargetLut:
        if self.id is None and self.target is None:
            raise ValueError("a target needs its id or its target record")
        return self

    @property
    def tid(self) -> str:
        """The target id (``id``, else derived from ``target``)."""
        return self.id if self.id is not None else self.record().id

    def record(self) -> Target:
        """The Target: ``target`` when given, else parsed from ``id`` (ValueError/ValidationError if bad)."""
        if self.target is not None:
            return Target.model_validate(self.target)
        return Target.parse(str(self.id))

    def by_key(self) -> Dict[str, Entry]:
        """The measured entries by key (predicted ones are in ``predicted_entries``)."""
        return {e.key: e for e in self.entries if not e.predicted}

    def predicted_entries(self) -> Dict[str, Entry]:
        return {e.key: e for e in self.entries if e.predicted}

    def values(self, metric: str = "median_ms") -> Dict[str, float]:
        """Key -> value of every measured entry that has one."""
        out = {}
        for e in self.entries:
            if e.predicted:
                continue
            v = e.value(metric)
            if v is not None:
                out[e.key] = v
        return out


class LutDocument(_Part):
    """A whole export: targets, and the devices that measured them."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["nas-lut/1"] = Field("nas-lut/1", alias="schema")
    exported_at: Optional[str] = None
    targets: List[TargetLut]
    devices: List[Device] = Field(default_factory=list)
    calibration: Optional[Dict[str, Any]] = None  # early exports: one for the whole document

    def target(self, tid: Optional[str] = None) -> TargetLut:
        """The target ``tid``; without one, the only target (else an error listing them)."""
        if tid is None and len(self.targets) == 1:
            return self.targets[0]
        for t in self.targets:
            if t.tid == tid:
                return t
        known = ", ".join(t.tid for t in self.targets) or "none"
        raise DocumentError(f"no target {tid!r} in this LUT (targets: {known})")


def describe(err: ValidationError, limit: int = 3) -> str:
    """Pydantic's errors as ``targets[0].entries[1].key: Field required``, the first few."""
    parts = []
    for e in err.errors()[:limit]:
        path = ""
        for x in e["loc"]:
            path += f"[{x}]" if isinstance(x, int) else (f".{x}" if path else str(x))
        parts.append(f"{path}: {e['msg']}" if path else str(e["msg"]))
    more = len(err.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse(doc: Any, where: str = "export document") -> LutDocument:
    """The document from decoded JSON; DocumentError names the field at fault."""
    if not isinstance(doc, dict):
        raise DocumentError(f"{where}: not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise DocumentError(f"{where}: schema is {doc.get('schema')!r}, expected {SCHEMA!r} (a GET /export document)")
    try:
        return LutDocument.model_validate(doc)
    except ValidationError as e:
        raise DocumentError(f"{where}: {describe(e)}") from None


def load(path: Union[str, Path]) -> LutDocument:
    """The document in a JSON file (``lut export -o``, ``GET /export``)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise DocumentError(f"cannot read LUT file {p}: {e.strerror or e}") from None
    except ValueError as e:
        raise DocumentError(f"LUT file {p} is not valid JSON: {e}") from None
    return parse(doc, str(p))
