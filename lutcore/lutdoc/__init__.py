"""The ``nas-lut/1`` export document and the one rule that turns runs into a LUT entry."""

from lutcore.lutdoc.aggregate import ENTRY_FIELD, METRICS, Run, aggregate, check_metric
from lutcore.lutdoc.model import (
    FIGURES,
    SCHEMA,
    CalibrationRecord,
    Device,
    DocumentError,
    Entry,
    LutDocument,
    Measurement,
    TargetLut,
    Validation,
    describe,
    load,
    parse,
)

__all__ = [
    "ENTRY_FIELD",
    "FIGURES",
    "METRICS",
    "SCHEMA",
    "CalibrationRecord",
    "Device",
    "DocumentError",
    "Entry",
    "LutDocument",
    "Measurement",
    "Run",
    "TargetLut",
    "Validation",
    "aggregate",
    "check_metric",
    "describe",
    "load",
    "parse",
]
