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
our spec, and the one input shape is the activation's NCHW shape. ``table_ops`` reads such a file back
(``lut import --format fbnet-jsonl``, through ``legacy.document``): each record becomes the spec it was
written from; a record of theirs that is no op of ours (a Caffe2 ``Conv``) is reported, a line that is
not a record refuses the file.

``device``: their ``RunTimeAPI`` loads ``<db_dir>/<device>-op_lut_database.json`` and ``find_op`` matches
on it, and their names are short board names (``xavier``), so both ways take one (``check_device``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
from typing import Any, Dict, List, Optional, Tuple

from lutcore.errors import FormatError
from lutcore.lutdoc import TargetLut
from lutcore.ops import OpSpec, families, family_class, spec_from_dict
from lutcore.records import Target

# Caffe2's TensorProto.DataType numbers, per our precision.
DTYPES = {"fp32": 1, "fp16": 12, "int8": 7}
# The record's keys (LUTSchema); runtime_us_p100 is left to the schema's default: we keep no maximum.
SCHEMA_KEYS = ("op_type", "op_args", "input_shapes", "input_dtypes", "runtime_us_p0", "runtime_us_p10",
               "runtime_us_p50", "runtime_us_p90", "runtime_us_p100", "device")
IN_SHAPE = ("batch", "c_in", "h", "w")
MAX_DEVICE = 128


def check_device(name: str) -> str:
    """``name`` if their code can use it as a device: it is part of the file name ``RunTimeAPI`` loads
    (``<device>-op_lut_database.json``), so no ``/``, no control character, not ``.`` or ``..``."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_DEVICE:
        raise FormatError(f"device name must be 1 to {MAX_DEVICE} characters, e.g. xavier")
    if "/" in name or not name.isprintable() or name in (".", ".."):
        raise FormatError(f"device name {name[:60]!r} is part of their file name <device>-op_lut_database.json: "
                          "no '/', no control character, not '.' or '..' (e.g. xavier, pixel2)")
    return name


def _float32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _float32_text(x: float) -> str:
    """A float argument as protobuf's text format prints a float field: the float32 value to 9 digits."""
    return f"{_float32(x):.9g}"


def _shortest(x: float) -> float:
    """The shortest decimal with ``x``'s float32: undoes ``_float32_text`` for the numbers a spec holds
    (0.1 prints as 0.100000001 and reads back as 0.1)."""
    want = _float32(x)
    for digits in range(1, 10):
        y = float(f"{x:.{digits}g}")
        if _float32(y) == want:
            return y
    return x


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
    """One record per entry with a value; ``device`` (their name for the board, ``check_device``)
    defaults to the target's id."""
    tgt = target.record()
    dev = tgt.id if device is None else check_device(device)
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


# -- reading a file back ------------------------------------------------------------------------------
ARG = re.compile(r'name: "([A-Za-z_][A-Za-z0-9_]{0,63})"\n([ifs]): ([^\n]{1,300})\n')
PLAIN_STRING = re.compile(r'"([^"\\]*)"')
RUNTIMES = ("runtime_us_p0", "runtime_us_p10", "runtime_us_p50", "runtime_us_p90", "runtime_us_p100")
NO_FAMILY = "op type that is no family of ours"
NO_OP = "arguments or shapes no op of ours has"
OTHER_DEVICE = "device other than"
Mapped = List[Tuple[OpSpec, Dict[str, Any]]]  # spec, its TimingStats fields
Left = Dict[str, List[str]]  # reason -> records left out ("line N: op_type shapes")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _ints(xs: Any) -> bool:
    return isinstance(xs, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in xs)


def _checked(rec: Any, n: int) -> Dict[str, Any]:
    """The record with the schema's defaults (``LUTSchema``), every field of the type theirs holds;
    FormatError naming the line otherwise (their ``OpLut.load`` refuses keys outside the schema too)."""
    if not isinstance(rec, dict):
        raise FormatError(f"line {n}: a record is a JSON object, not {type(rec).__name__}")
    extra = sorted(str(k) for k in rec if k not in SCHEMA_KEYS)
    if extra:
        raise FormatError(f"line {n}: {extra[0][:80]!r} is no field of their record ({', '.join(SCHEMA_KEYS)})")
    r: Dict[str, Any] = {"op_type": "", "op_args": [], "input_shapes": [], "input_dtypes": [], "device": "",
                         **{k: 0.0 for k in RUNTIMES}, **rec}
    if not (isinstance(r["op_type"], str) and isinstance(r["device"], str) and isinstance(r["op_args"], list)
            and all(isinstance(a, str) for a in r["op_args"]) and _ints(r["input_dtypes"])
            and isinstance(r["input_shapes"], list) and all(_ints(s) for s in r["input_shapes"])):
        raise FormatError(f"line {n}: op_type and device must be strings, op_args a list of strings, "
                          "input_shapes a list of lists of ints, input_dtypes a list of ints")
    if not all(_is_number(r[k]) and r[k] >= 0 for k in RUNTIMES) or not r["runtime_us_p50"] > 0:
        raise FormatError(f"line {n}: runtime_us_p50 must be a positive time in µs, the other runtimes >= 0")
    given = [r[k] for k in RUNTIMES[:4] if r[k] > 0]  # 0.0 is the schema's default: not given
    if given != sorted(given):
        raise FormatError(f"line {n}: runtimes out of order: p0 <= p10 <= p50 <= p90 must hold where given")
    return r


def parse_jsonl(text: str) -> List[Tuple[int, Dict[str, Any]]]:
    """(line number, record) of each non-blank line, as ``OpLut.load`` reads one JSON object a line."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            where = f" at column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
            raise FormatError(f"line {n}: not JSON ({getattr(e, 'msg', e)}{where})") from None
        except RecursionError:
            raise FormatError(f"line {n}: not JSON (nested too deep)") from None
        out.append((n, _checked(rec, n)))
    return out


def _arg(text: str, family: str, kinds: Dict[str, str]) -> Tuple[str, Any]:
    """(field, value) of one ``arg_text``, the value of the field's type; FormatError when it is none."""
    m = ARG.fullmatch(text)
    if m is None:
        raise FormatError(f"argument {text[:80]!r} is not a name and one i, f or s value")
    name, field, raw = m.groups()
    kind = kinds.get(name)
    if kind is None or name in IN_SHAPE:
        raise FormatError(f"argument {name} is no argument of {family}")
    if field == "s" and kind == "str" and PLAIN_STRING.fullmatch(raw):
        return name, raw[1:-1]
    if field == "i" and kind == "bool" and raw in ("0", "1"):
        return name, raw == "1"
    if field == "i" and kind == "int" and re.fullmatch(r"-?\d{1,18}", raw):
        return name, int(raw)
    if field == "f" and kind == "float":
        try:
            x = float(raw)
            if math.isfinite(x):
                return name, _shortest(x)
        except (ValueError, OverflowError):
            pass
    raise FormatError(f"argument {name} {field}: {raw[:40]} is no {kind} value")


def record_spec(rec: Dict[str, Any]) -> OpSpec:
    """The op spec ``op_record`` wrote this record from (op type a family of ours); ValueError
    (FormatError, SpecError) saying why there is none."""
    family = rec["op_type"]
    kinds = {f.name: str(f.type) for f in dataclasses.fields(family_class(family))}
    spec: Dict[str, Any] = {"family": family}
    for text in rec["op_args"]:
        name, value = _arg(text, family, kinds)
        if name in spec:
            raise FormatError(f"argument {name} given twice")
        spec[name] = value
    shapes = rec["input_shapes"]
    if len(shapes) != 1 or len(shapes[0]) != 4:
        raise FormatError(f"input shapes {str(shapes)[:80]} are not the one NCHW shape of our ops")
    spec.update(zip(IN_SHAPE, shapes[0]))
    return spec_from_dict(spec)


def _stats(rec: Dict[str, Any]) -> Dict[str, Any]:
    """One measurement's figures: the p50 as median and mean, p0/p10/p90 where given (else the p50 or
    the next one up), one sample (their schema keeps no count)."""
    p50 = rec["runtime_us_p50"] / 1e3
    p10 = rec["runtime_us_p10"] / 1e3 or p50
    return {"median_ms": p50, "mean_ms": p50, "std_ms": 0.0, "min_ms": rec["runtime_us_p0"] / 1e3 or p10,
            "p10_ms": p10, "p90_ms": rec["runtime_us_p90"] / 1e3 or p50, "n": 1}


def _devices_shown(devices: List[str]) -> str:
    return ", ".join(repr(d[:60]) for d in devices[:5]) + (", ..." if len(devices) > 5 else "")


def table_ops(text: str, target: Target, device: Optional[str] = None) -> Tuple[Mapped, Left]:
    """Our ops and their figures from a runtime LUT file, and the records left out by reason.

    ``device`` (their name, ``lut import --fbnet-device``) picks that device's records, the others left
    out; a name no record has refuses the file (a typo would otherwise import nothing or everything).
    Without it, a file of several devices gives the records of the one named by the target id and a file
    of one device gives all of them. Records of another dtype than the target's precision are left out,
    as are op types and arguments that are none of ours."""
    recs = parse_jsonl(text)
    devices = sorted({r["device"] for _, r in recs})
    if device is not None:
        check_device(device)
        if device not in devices:
            raise FormatError(f"no record of the file is of device {device!r}; it holds records of {len(devices)} "
                              f"device(s) ({_devices_shown(devices)})")
        pick, other = device, f"{OTHER_DEVICE} {device!r}"
    elif len(devices) > 1:
        if target.id not in devices:
            raise FormatError(f"the file holds records of {len(devices)} devices ({_devices_shown(devices)}); "
                              "import it as one of them (the target id), choose one with --fbnet-device, or "
                              "split it by device first")
        pick, other = target.id, f"{OTHER_DEVICE} the target id"
    else:
        pick, other = None, ""
    dtype = DTYPES[target.precision]
    ours = set(families())
    ops: Mapped = []
    left: Left = {}
    for n, r in recs:
        where = f"line {n}: {r['op_type'][:40]} {str(r['input_shapes'])[:60]}"
        if pick is not None and r["device"] != pick:
            left.setdefault(other, []).append(f"{where} ({r['device'][:60]})")
        elif r["op_type"] not in ours:
            left.setdefault(NO_FAMILY, []).append(where)
        elif r["input_dtypes"] != [dtype]:
            left.setdefault(f"input dtypes other than [{dtype}] ({target.precision})", []).append(
                f"{where} {r['input_dtypes'][:4]}")
        else:
            try:
                ops.append((record_spec(r), _stats(r)))
            except ValueError as e:  # FormatError, SpecError
                left.setdefault(NO_OP, []).append(f"{where} ({str(e)[:200]})")
    return ops, left
