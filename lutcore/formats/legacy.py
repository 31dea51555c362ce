"""Bring your old LUT: a ProxylessNAS/OFA YAML or a TF-NAS latency pickle as a ``nas-lut/1`` document of
one target, mapped onto our op keys (the reverse of ``ofa`` and ``tfnas``), so ``lut import`` stores it
through the one import path and its numbers can be compared with fresh measurements.

Read safely: YAML with ``safe_load``, the pickle with ``tfnas.load_pickle`` (no class but OrderedDict,
no callable). Everything is parsed and mapped before anything is stored; what cannot be one of our ops
is reported, not guessed.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Dict, List, Tuple

from lutcore.errors import FormatError
from lutcore.formats import tfnas
from lutcore.ops import Conv, InvertedResidual, OpSpec, PoolFC
from lutcore.records import Target

MAX_BYTES = 64 << 20
FORMATS = ("proxyless-yaml", "tfnas-pickle")
_HWC = r"(\d{1,5})x(\d{1,5})x(\d{1,5})"
_IO = rf"input:{_HWC}-output:"
PROXYLESS_KEYS = {
    "Conv": re.compile(rf"Conv-{_IO}{_HWC}"),
    "Conv_1": re.compile(rf"Conv_1-{_IO}{_HWC}"),
    "Logits": re.compile(rf"Logits-{_IO}(\d{{1,6}})"),
    "expanded_conv": re.compile(
        rf"expanded_conv-{_IO}{_HWC}-expand:(\d{{1,4}})-kernel:(\d{{1,2}})-stride:(\d)-idskip:([01])"),
}

Mapped = List[Tuple[OpSpec, float, float, int]]  # spec, mean ms, std ms, samples


def _proxyless_spec(key: str) -> OpSpec:
    """The op of ours that ``ofa.layer_keys`` writes under this key for the ProxylessNAS table (relu6)."""
    layer = key.split("-", 1)[0]
    pat = PROXYLESS_KEYS.get(layer)
    m = pat.fullmatch(key) if pat else None
    if m is None:
        raise FormatError(f"key {key[:100]!r} is none of ProxylessNAS's layers ({', '.join(PROXYLESS_KEYS)})")
    g = [int(x) for x in m.groups()]
    h, w, c = g[0], g[1], g[2]
    if layer == "Logits":
        return PoolFC(c_in=c, h=h, w=w, c_out=g[3])
    ho, c_out = g[3], g[5]
    if layer in ("Conv", "Conv_1"):
        kernel, stride = (3, 2) if layer == "Conv" else (1, 1)
        spec: OpSpec = Conv(c_in=c, h=h, w=w, c_out=c_out, kernel=kernel, stride=stride, act="relu6")
    else:
        e, k, s, skip = g[6:]
        spec = InvertedResidual(c_in=c, h=h, w=w, c_out=c_out, kernel=k, stride=s, expansion=e, act="relu6",
                                pw_expand=e != 1)
        if int(spec.residual) != skip:
            raise FormatError(f"key {key!r}: idskip:{skip} but the block's shapes say residual={spec.residual}")
    if spec.out_hw != (ho, g[4]):
        raise FormatError(f"key {key!r}: output {ho}x{g[4]} is not what its input, kernel and stride give")
    return spec


def proxyless_ops(text: str) -> Mapped:
    """Our ops and their (mean, std, count) from an OFA/ProxylessNAS latency table (YAML)."""
    import yaml

    try:
        table = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise FormatError(f"not YAML: {e}") from None
    if not isinstance(table, dict) or not table:
        raise FormatError("a ProxylessNAS latency table is a mapping of layer key -> {mean, count, var}")
    out: Mapped = []
    for key, row in table.items():
        if not isinstance(key, str) or not isinstance(row, dict) or "mean" not in row:
            raise FormatError(f"entry {str(key)[:100]!r} must be a layer key with a mapping holding mean")
        mean: Any = row["mean"]
        count: Any = row.get("count", 1)
        var: Any = row.get("var", 0.0)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (mean, count, var)):
            raise FormatError(f"{key}: mean, count and var must be numbers")
        if not (math.isfinite(mean) and mean > 0 and math.isfinite(var) and var >= 0 and count >= 1):
            raise FormatError(f"{key}: mean must be a positive time, var >= 0 and count >= 1")
        try:
            spec = _proxyless_spec(key)
        except ValueError as e:  # SpecError, FormatError
            raise FormatError(f"{key}: {e}") from None
        out.append((spec, float(mean), math.sqrt(var), int(count)))
    return out


def tfnas_ops(data: bytes) -> Tuple[Mapped, Dict[str, List[str]]]:
    ops, left = tfnas.table_ops(tfnas.load_pickle(data))
    return [(spec, ms, 0.0, 1) for spec, ms in ops], left


def document(fmt: str, data: bytes, target_id: str) -> Tuple[Dict[str, Any], Dict[str, List[str]]]:
    """(a ``nas-lut/1`` document with one target holding the file's ops, {reason: their keys left out}).

    Each op gets one measurement whose figures are the file's number (their tables keep one: the mean),
    run id ``import-<file digest>`` (importing the same file twice adds nothing), device ``imported``.
    """
    if fmt not in FORMATS:
        raise FormatError(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
    if len(data) > MAX_BYTES:
        raise FormatError(f"the file is {len(data)} bytes; at most {MAX_BYTES} are read")
    try:
        target = Target.parse(target_id)
    except ValueError as e:
        raise FormatError(str(e)) from None
    left: Dict[str, List[str]] = {}
    if fmt == "proxyless-yaml":
        try:
            ops = proxyless_ops(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError("not UTF-8 text") from None
    else:
        ops, left = tfnas_ops(data)
    if not ops:
        raise FormatError("no op of the file maps onto ours; nothing to import")
    run_id = "import-" + hashlib.sha256(data).hexdigest()[:16]
    entries: Dict[str, Dict[str, Any]] = {}
    for spec, mean, std, n in ops:
        if spec.key in entries:
            raise FormatError(f"two of the file's entries are our op {spec.key}")
        stats = {"median_ms": mean, "mean_ms": mean, "std_ms": std, "min_ms": mean, "p10_ms": mean,
                 "p90_ms": mean, "n": n}
        entries[spec.key] = {"key": spec.key, "spec": spec.to_dict(),
                             "measurements": [{"run_id": run_id, "device": "imported", "stats": stats,
                                               "env": {"imported_from": fmt}}]}
    doc = {"schema": "nas-lut/1", "targets": [{"target": target.model_dump(), "entries": list(entries.values())}],
           "devices": []}
    return doc, left
