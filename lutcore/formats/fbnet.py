"""FBNet / ChamNet runtime LUT (facebookresearch/mobile-vision, ``runtime_lut``): JSON lines of the
records its ``LUTSchema`` holds and ``OpLut`` loads and matches.

Read at commit bb8465cfe06327c35b398f3cc0b30e2e668eb0dd: ``runtime_lut/code/lut_schema.py`` defines a
record as ``op_type``, ``op_args`` (each argument's Caffe2 ``Argument`` proto text, sorted by name),
``input_shapes``, ``input_dtypes`` (Caffe2 ``DataType`` numbers), ``runtime_us_p0/p10/p50/p90/p100`` (µs)
and ``device``; ``OpLut.load`` (``api.py``) reads one JSON object per line, refusing keys outside the
schema, and ``find_op`` matches a query on op type, input shapes, dtypes, device and args;
``get_op_runtime`` answers the p50. (``mobile_cv/lut/lib`` is the newer, pickled form: instances of
their op classes, which only their code can write or safely read.)

Our ops are whole blocks, not Caffe2 operators: ``op_type`` is our family, the arguments are the rest of
our spec, and the one input shape is the activation's NCHW shape.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any, Dict, List, Optional

from lutcore.errors import FormatError
from lutcore.lutdoc import TargetLut
from lutcore.ops import spec_from_dict

# Caffe2's TensorProto.DataType numbers, per our precision.
DTYPES = {"fp32": 1, "fp16": 12, "int8": 7}
# The record's keys (LUTSchema); runtime_us_p100 is left to the schema's default: we keep no maximum.
SCHEMA_KEYS = ("op_type", "op_args", "input_shapes", "input_dtypes", "runtime_us_p0", "runtime_us_p10",
               "runtime_us_p50", "runtime_us_p90", "runtime_us_p100", "device")
IN_SHAPE = ("batch", "c_in", "h", "w")


def _float32_text(x: float) -> str:
    """A float argument as protobuf's text format prints a float field: the float32 value to 9 digits."""
    return f"{struct.unpack('<f', struct.pack('<f', x))[0]:.9g}"


def arg_text(name: str, value: Any, kind: str) -> str:
    """One argument as ``str()`` of a Caffe2 ``Argument`` proto: ``name: "kernel"\\ni: 3\\n``. ``kind`` is
    the spec field's type (``float`` fields are always ``f``, so 6 and 6.0 give one record)."""
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        field = f"f: {_float32_text(float(value))}"
    elif isinstance(value, (bool, int)):
        field = f"i: {int(value)}"
    elif isinstance(value, float):
        field = f"f: {_float32_text(value)}"
    elif isinstance(value, str) and value.isprintable() and '"' not in value and "\\" not in value:
        field = f's: "{value}"'
    else:
        raise FormatError(f"argument {name}={value!r} has no Caffe2 argument form (int, float or plain string)")
    return f'name: "{name}"\n{field}\n'


def op_record(spec: Dict[str, Any], dtype: int, device: str) -> Dict[str, Any]:
    """The record's match fields for one of our op specs (its ``to_dict``)."""
    try:
        kinds = {f.name: str(f.type) for f in dataclasses.fields(spec_from_dict(spec))}
    except ValueError as e:
        raise FormatError(f"op {spec.get('family')}: {e}") from None
    rest = {k: v for k, v in spec.items() if k not in IN_SHAPE and k != "family"}
    return {"op_type": spec["family"], "op_args": [arg_text(k, rest[k], kinds.get(k, "")) for k in sorted(rest)],
            "input_shapes": [[int(spec.get("batch", 1)), int(spec["c_in"]), int(spec["h"]), int(spec["w"])]],
            "input_dtypes": [dtype], "device": device}


def records(target: TargetLut, device: Optional[str] = None) -> List[Dict[str, Any]]:
    """One record per entry with a value; ``device`` defaults to the target's id."""
    tgt = target.record()
    dev = device or tgt.id
    out = []
    for e in target.entries:
        fig = e.figures()
        if not fig:
            continue
        counted = [m.stats.min_ms for m in e.measurements if not m.quarantined]
        rec = op_record(e.spec, DTYPES[tgt.precision], dev)
        if counted:  # else left to the schema's default, as p100 always is
            rec["runtime_us_p0"] = min(counted) * 1e3
        rec.update({"runtime_us_p10": fig["p10_ms"] * 1e3, "runtime_us_p50": fig["median_ms"] * 1e3,
                    "runtime_us_p90": fig["p90_ms"] * 1e3})
        out.append(rec)
    return out


def dump_jsonl(recs: List[Dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)
