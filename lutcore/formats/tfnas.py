"""TF-NAS latency lookup table: the pickle its search code loads (``train_search.py --lookup_path``).

Read from AberHu/TF-NAS at commit 08b31a2e6dc2386ae72890369847c2206745006a: ``MixedOP.get_lookup_latency``
(``models/model_search.py``) composes, per candidate block,
``MBInvertedResBlock_{input size}_{c_in}_{SE channels}_{c_out}_k{kernel}_s{stride}_{act}`` and reads
``lat_lookup[key][mid_channels]``; ``get_lookup_latency`` (``train_search.py``) starts from
``lat_lookup['base']``, the fixed layers (stem conv, stem block, 1x1 feature mix, pooling, classifier)
summed. So the table is ``{"base": ms, key: {mid channels: ms}}``; the mid-channel level holds the
space's widths: one per expansion from ``tfnas``, five per block from ``tfnas-elastic``
(``lutcore.catalogues.elastic``), where TF-NAS's own tables enumerate every width.

Written as plain dicts, str, int and float only; read back (``lut import``) with an unpickler that
builds nothing but those and ``collections.OrderedDict`` (what TF-NAS's own pickles hold).
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import re
from typing import Any, Dict, List, Mapping, Tuple

from lutcore.catalogues import Invalid
from lutcore.errors import FormatError
from lutcore.ops import Conv, InvertedResidual, OpSpec, Skip
from lutcore.spaces.space import Space

BASE = "base"
BLOCK = "MBInvertedResBlock"
# our activation -> the act_func their block is built with (models/layers.py)
ACTS = {"relu": "relu", "relu6": "relu6", "swish": "swish", "hswish": "h-swish"}
KEY = re.compile(r"MBInvertedResBlock_(\d{1,5})_(\d{1,5})_(\d{1,5})_(\d{1,5})_k(\d{1,2})_s(\d)_(relu6?|swish|h-swish)")

Table = Dict[str, Any]


def _refuse(spec: OpSpec, why: str) -> FormatError:
    return FormatError(f"op {spec.key} has no counterpart in TF-NAS's latency table: {why}")


def block_key(spec: OpSpec) -> Tuple[str, int]:
    """(their key, mid channels) of a searchable block, as ``MixedOP.get_lookup_latency`` builds them."""
    if not isinstance(spec, InvertedResidual):
        raise _refuse(spec, "their candidates are MBInvertedResBlocks (inverted residuals)")
    if spec.groups != 1 or spec.shuffle or spec.dilation != 1:
        raise _refuse(spec, "their candidate blocks have no groups, channel shuffle or dilation")
    if spec.act not in ACTS:
        raise _refuse(spec, f"their blocks use {', '.join(ACTS.values())}")
    if spec.se and spec.se_style != "tfnas":
        raise _refuse(spec, "their SE is sized in channels of c_in with the block's activation and a sigmoid")
    if spec.pw_expand and spec.hidden <= spec.c_in:
        raise _refuse(spec, "their block drops the expansion conv whenever mid channels <= c_in")
    if spec.h != spec.w:
        raise _refuse(spec, "their key has one input size (square maps)")
    se = spec.se_hidden if spec.se else 0
    act = ACTS[spec.act]
    return f"{BLOCK}_{spec.w}_{spec.c_in}_{se}_{spec.c_out}_k{spec.kernel}_s{spec.stride}_{act}", spec.hidden


def base_ops(space: Space) -> List[OpSpec]:
    """The ops their ``base`` stands for: stem conv, stem block, 1x1 feature mix, pooling + classifier."""
    stem = [f.spec for f in space.stem]
    head = [f.spec for f in space.head]
    if len(stem) != 2 or len(head) != 2:
        raise FormatError(f"{space.name}: their base is a stem conv and a stem block, then a 1x1 conv and "
                          f"pooling + classifier; here the stem has {len(stem)} op(s) and the head {len(head)}")
    conv, block = stem
    if not (isinstance(conv, Conv) and (conv.kernel, conv.stride, conv.c_in) == (3, 2, 3)):
        raise _refuse(conv, "their first stem is a 3x3 stride-2 conv from 3 channels")
    if not (isinstance(block, InvertedResidual) and not block.pw_expand and block.stride == 1 and block.kernel == 3):
        raise _refuse(block, "their second stem is a 3x3 stride-1 block without expansion conv")
    mix, fc = head
    if not (isinstance(mix, Conv) and (mix.kernel, mix.stride) == (1, 1)):
        raise _refuse(mix, "their feature mix is a 1x1 conv")
    if fc.family != "pool_fc":
        raise _refuse(fc, "their head ends in global pooling and the classifier (our pool_fc)")
    return stem + head


def layer_keys(space: Space) -> List[Tuple[str, int, OpSpec]]:
    """(their key, mid channels, our spec) for every searchable candidate; identity skips have none."""
    h, w = space.resolution
    if space.decoder is not None:
        raise FormatError(f"{space.name} has a decoder ({space.decoder.spec.key}); TF-NAS's table is a classifier's")
    if h != w:
        raise FormatError(f"{space.name} at {h}x{w}: TF-NAS's keys carry one input size (square images)")
    out: List[Tuple[str, int, OpSpec]] = []
    for row in space.grid:
        for spec in row:
            if isinstance(spec, Invalid):
                continue
            if isinstance(spec, Skip):
                if spec.is_identity:
                    continue
                raise _refuse(spec, "their depth search drops a block only where the shape is kept (an identity)")
            key, mid = block_key(spec)
            out.append((key, mid, spec))
    return out


def latency_table(space: Space, values: Mapping[str, float]) -> Table:
    """Their table for one space at one resolution (``base`` holds no size), from our op key -> ms.

    Every op must have a value: their code fails on the first missing key or width.
    """
    missing: List[str] = []

    def value(spec: OpSpec) -> float:
        v = values.get(spec.key)
        if v is None:
            if spec.key not in missing:
                missing.append(spec.key)
            return math.nan
        return float(v)

    blocks = layer_keys(space)
    table: Table = {BASE: math.fsum(value(s) for s in base_ops(space))}
    ours: Dict[Tuple[str, int], str] = {}
    for key, mid, spec in blocks:
        if ours.setdefault((key, mid), spec.key) != spec.key:
            raise FormatError(f"ops {ours[key, mid]} and {spec.key} would share their key {key} at width {mid}")
        table.setdefault(key, {})[mid] = value(spec)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise FormatError(f"{len(missing)} op(s) of {space.name} have no measured value on this target: {shown}")
    return table


def dump_pickle(table: Table) -> bytes:
    """Protocol 2: plain dict, str, int and float opcodes only, readable by any Python 3 TF-NAS runs on."""
    return pickle.dumps(table, protocol=2)


# -- reading one back ---------------------------------------------------------------------------------
class _PlainUnpickler(pickle.Unpickler):
    """Builds only what pickle's own opcodes build (dict, list, tuple, str, numbers) and OrderedDict."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise FormatError(f"the pickle refers to {module}.{name}; a latency table holds only dicts and numbers")

    def persistent_load(self, pid: Any) -> Any:
        raise FormatError("the pickle refers to a persistent object; a latency table holds only dicts and numbers")


def load_pickle(data: bytes) -> Any:
    """The object in ``data``, refusing any class or callable (a pickle can run code when loaded)."""
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except FormatError:
        raise
    except Exception as e:  # a truncated or corrupt stream raises many kinds  # noqa: BLE001
        raise FormatError(f"not a readable pickle: {type(e).__name__}: {e}") from None


def table_ops(table: Any) -> Tuple[List[Tuple[InvertedResidual, float]], Dict[str, List[str]]]:
    """Our ops and their ms from one of their tables (``base`` and what no block of theirs can be are
    left out): (ops, {reason: their keys left out})."""
    if not isinstance(table, dict):
        raise FormatError(f"a TF-NAS latency table is a dict of key -> {{mid channels: ms}}, "
                          f"not {type(table).__name__}")
    ops: List[Tuple[InvertedResidual, float]] = []
    left: Dict[str, List[str]] = {}
    for key, widths in table.items():
        if key == BASE:
            left.setdefault("base: the sum of the fixed layers, not one op", []).append(key)
            continue
        m = KEY.fullmatch(key) if isinstance(key, str) else None
        if m is None or not isinstance(widths, dict):
            raise FormatError(f"key {str(key)[:80]!r} is not {BLOCK}_<size>_<c_in>_<se>_<c_out>_k<K>_s<S>_<act> "
                              "with a dict of mid channels -> ms")
        size, c_in, se, c_out, k, s = (int(x) for x in m.groups()[:6])
        act = {v: a for a, v in ACTS.items()}[m.group(7)]
        for mid, ms in widths.items():
            where = f"{key}[{mid!r}]"
            number = isinstance(ms, (int, float)) and not isinstance(ms, bool)
            if isinstance(mid, bool) or not isinstance(mid, int) or not number:
                raise FormatError(f"{where}: mid channels must be an int and the latency a number")
            if mid < c_in:
                left.setdefault("mid channels below c_in: their block builds c_in then", []).append(where)
                continue
            if not (math.isfinite(ms) and ms > 0):
                left.setdefault("not a positive latency", []).append(where)
                continue
            try:
                spec = InvertedResidual(c_in=c_in, h=size, w=size, c_out=c_out, kernel=k, stride=s,
                                        mid=mid, se=se / c_in, act=act, pw_expand=mid > c_in)
            except ValueError as e:
                raise FormatError(f"{where}: {e}") from None
            if spec.se_hidden != se:
                raise FormatError(f"{where}: SE width {se} is not exact as a ratio of c_in={c_in}")
            ops.append((spec, float(ms)))
    return ops, left
