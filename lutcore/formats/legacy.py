"""Bring your old LUT: OFA's ProxylessNAS or MobileNetV3 latency YAML, a TF-NAS latency pickle or FBNet's
runtime LUT records, as a ``nas-lut/1`` document of one target, mapped onto our op keys (the reverse of
``ofa``, ``tfnas`` and ``fbnet``), so ``lut import`` stores it through the one import path and its
numbers can be compared with fresh measurements (``lut_server.compare``).

Read safely: YAML with ``safe_load``, the pickle with ``tfnas.load_pickle`` (no class but OrderedDict,
no callable), JSON lines with ``json.loads``. Everything is parsed and mapped before anything is
stored; a key that cannot be one of our ops is left out and reported by reason, not guessed; a
malformed value refuses the file.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Dict, List, Optional, Tuple

from lutcore.errors import FormatError
from lutcore.formats import OTHER_FORMATS, fbnet, ofa, tfnas
from lutcore.ops import Conv, GlobalAvgPool, InvertedResidual, OpSpec, PoolFC
from lutcore.records import Target

MAX_BYTES = 64 << 20
_HWC = r"(\d{1,5})x(\d{1,5})x(\d{1,5})"
_IO = rf"input:{_HWC}-output:"
_BLOCK = rf"expanded_conv-{_IO}{_HWC}-expand:(\d{{1,4}})-kernel:(\d{{1,2}})-stride:(\d)-idskip:([01])"
PROXYLESS_KEYS = {
    "Conv": re.compile(rf"Conv-{_IO}{_HWC}"),
    "Conv_1": re.compile(rf"Conv_1-{_IO}{_HWC}"),
    "Logits": re.compile(rf"Logits-{_IO}(\d{{1,6}})"),
    "expanded_conv": re.compile(_BLOCK),
}
MBV3_KEYS = {
    **PROXYLESS_KEYS,
    "AvgPool2D": re.compile(rf"AvgPool2D-{_IO}{_HWC}"),
    "Conv_2": re.compile(rf"Conv_2-{_IO}{_HWC}"),
    "expanded_conv": re.compile(_BLOCK + r"-se:([01])-hs:([01])"),
}
# their table class, the keys it queries, our dialect (ofa.py writes the same keys)
YAML_DIALECTS = {"proxyless-yaml": ("ProxylessNASLatencyTable", PROXYLESS_KEYS, ofa.PROXYLESS),
                 "ofa-mbv3-yaml": ("MBv3LatencyTable", MBV3_KEYS, ofa.MBV3)}
NOT_A_LAYER = "not a layer their table queries"
NO_OP = "shapes or widths no op of ours has"

Mapped = List[Tuple[OpSpec, Dict[str, Any]]]  # spec, its TimingStats fields
Left = Dict[str, List[str]]  # reason -> their keys left out


def _stats(mean: float, std: float = 0.0, n: int = 1) -> Dict[str, Any]:
    """Their one number (the mean) as every figure of one measurement."""
    return {"median_ms": mean, "mean_ms": mean, "std_ms": std, "min_ms": mean, "p10_ms": mean, "p90_ms": mean,
            "n": n}


def _layer_spec(key: str, fmt: str) -> Optional[OpSpec]:
    """The op of ours that ``ofa.layer_keys`` writes under this key; None when the key is none of their
    layers. Shapes that contradict each other raise FormatError (or SpecError, a ValueError)."""
    _, keys, d = YAML_DIALECTS[fmt]
    layer = key.split("-", 1)[0]
    pat = keys.get(layer)
    m = pat.fullmatch(key) if pat else None
    if m is None:
        return None
    g = [int(x) for x in m.groups()]
    h, w, c = g[0], g[1], g[2]
    if layer == "Logits":
        return PoolFC(c_in=c, h=h, w=w, c_out=g[3])
    ho, c_out = g[3], g[5]
    spec: OpSpec
    if layer == "AvgPool2D":
        spec = GlobalAvgPool(c_in=c, h=h, w=w, c_out=c_out)
    elif layer in ("Conv", "Conv_1", "Conv_2"):
        kernel, stride = (3, 2) if layer == "Conv" else (1, 1)
        spec = Conv(c_in=c, h=h, w=w, c_out=c_out, kernel=kernel, stride=stride, act=d.stem_act,
                    bn=layer != "Conv_2")
    else:
        spec = _block(g, d)
    if spec.out_hw != (ho, g[4]):
        raise FormatError(f"output {ho}x{g[4]} is not what its input, kernel and stride give")
    return spec


def _block(g: List[int], d: ofa.Dialect) -> InvertedResidual:
    """``expand`` is the ratio in ProxylessNAS's key, the expanded width in MBv3's (with se and hs)."""
    c, expand, k, s, skip = g[2], g[6], g[7], g[8], g[9]
    fields: Dict[str, Any] = {"act": d.block_acts[0]}
    if d.mbv3:
        if expand % 8:
            raise FormatError(f"expand:{expand} is not a multiple of 8 (their make_divisible)")
        se, hs = g[10:12]
        ratio = expand // c if expand % c == 0 else expand / c
        fields = {"act": "hswish" if hs else "relu", **({"se": 0.25, "se_style": "mbv3"} if se else {})}
    else:
        ratio = expand
    spec = InvertedResidual(c_in=c, h=g[0], w=g[1], c_out=g[5], kernel=k, stride=s, expansion=ratio,
                            pw_expand=round(c * ratio) != c, **fields)
    if d.mbv3 and spec.hidden != expand:
        raise FormatError(f"expand:{expand} is no whole width of {c} input channels")
    if int(spec.residual) != skip:
        raise FormatError(f"idskip:{skip} but the block's shapes say residual={spec.residual}")
    return spec


def yaml_ops(text: str, fmt: str) -> Tuple[Mapped, Left]:
    """Our ops and their (mean, std, count) from an OFA/ProxylessNAS latency table (YAML), and the keys
    left out by reason. A row that is not ``{mean, count, var}`` numbers refuses the file."""
    import yaml

    table_cls = YAML_DIALECTS[fmt][0]
    try:
        table = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise FormatError(f"not YAML: {e}") from None
    if not isinstance(table, dict) or not table:
        raise FormatError(f"a {table_cls} latency table is a mapping of layer key -> {{mean, count, var}}")
    out: Mapped = []
    left: Left = {}
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
            spec = _layer_spec(key, fmt)
        except ValueError as e:  # SpecError, FormatError
            left.setdefault(NO_OP, []).append(f"{key[:200]} ({e})")
            continue
        if spec is None:
            left.setdefault(f"{NOT_A_LAYER}: {', '.join(YAML_DIALECTS[fmt][1])}", []).append(key[:200])
            continue
        out.append((spec, _stats(float(mean), math.sqrt(var), int(count))))
    return out, left


def tfnas_ops(data: bytes) -> Tuple[Mapped, Left]:
    ops, left = tfnas.table_ops(tfnas.load_pickle(data))
    return [(spec, _stats(ms)) for spec, ms in ops], left


def document(fmt: str, data: bytes, target_id: str, fbnet_device: Optional[str] = None
             ) -> Tuple[Dict[str, Any], Left]:
    """(a ``nas-lut/1`` document with one target holding the file's ops, {reason: their keys left out}).

    Each op gets one measurement whose figures are the file's number (their tables keep one: the mean;
    FBNet's records keep p0/p10/p50/p90, the p50 our median), run id ``import-<file digest>`` (importing
    the same file twice adds nothing; when ``fbnet_device`` picks some of the file's records, the digest
    of the file and that name, so another device's records are not taken for the same run), device
    ``imported``.
    """
    if fmt not in OTHER_FORMATS:
        raise FormatError(f"format {fmt!r} must be one of {', '.join(OTHER_FORMATS)}")
    if fbnet_device is not None and fmt != "fbnet-jsonl":
        raise FormatError(f"a device name (--fbnet-device) picks records of fbnet-jsonl, not of {fmt}")
    if len(data) > MAX_BYTES:
        raise FormatError(f"the file is {len(data)} bytes; at most {MAX_BYTES} are read")
    try:
        target = Target.parse(target_id)
    except ValueError as e:
        raise FormatError(str(e)) from None
    if fmt == "tfnas-pickle":
        ops, left = tfnas_ops(data)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("not UTF-8 text") from None
        ops, left = yaml_ops(text, fmt) if fmt in YAML_DIALECTS else fbnet.table_ops(text, target, fbnet_device)
    if not ops:
        why = "; ".join(f"{len(keys)} left out ({reason}), e.g. {keys[0]}" for reason, keys in left.items())
        raise FormatError(f"no op of the file maps onto ours ({why or 'it is empty'}); nothing to import")
    digest = hashlib.sha256(data)
    if fbnet_device is not None and any(why.startswith(fbnet.OTHER_DEVICE) for why in left):
        digest.update(b"\0device:" + fbnet_device.encode("utf-8", "surrogatepass"))
    run_id = "import-" + digest.hexdigest()[:16]
    entries: Dict[str, Dict[str, Any]] = {}
    for spec, stats in ops:
        if spec.key in entries:
            raise FormatError(f"two of the file's entries are our op {spec.key}")
        entries[spec.key] = {"key": spec.key, "spec": spec.to_dict(),
                             "measurements": [{"run_id": run_id, "device": "imported", "stats": stats,
                                               "env": {"imported_from": fmt}}]}
    doc = {"schema": "nas-lut/1", "targets": [{"target": target.model_dump(), "entries": list(entries.values())}],
           "devices": []}
    return doc, left
