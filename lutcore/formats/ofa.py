"""Once-for-All / ProxylessNAS latency tables: the YAML their ``ProxylessNASLatencyTable`` and
``MBv3LatencyTable`` (``ofa.nas.efficiency_predictor``) load and query.

Their code does not look ops up by spec: it composes a string per layer of a network config
(``Conv-input:224x224x3-output:112x112x32``, ``expanded_conv-input:...-expand:6-kernel:3-stride:1-
idskip:1``, ...) and reads ``lut[key]["mean"]``. So the table is written from a chain space: each op
of its stem, grid and head gets the key their code builds for that layer, and the value of our op.
A space whose ops their networks do not have (grouped or dilated blocks, other activations, a
decoder) is refused, naming the op.

Each row is ``{mean, count, var}``: ``mean`` is our LUT value in ms (the median of run medians: the
number our own architecture sums use, so their sums equal ours), ``count`` the timed samples over all
runs, ``var`` the variance of those samples pooled over runs (``pooled_stats``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from lutcore.catalogues import Invalid
from lutcore.errors import FormatError
from lutcore.lutdoc import TargetLut
from lutcore.ops import Conv, InvertedResidual, OpSpec, Skip
from lutcore.spaces.space import Space

Table = Dict[str, Dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class OpStats:
    """One LUT entry as the table writes it."""

    mean_ms: float
    count: int
    var: float


def pooled_stats(value_ms: float, runs: Iterable[Tuple[float, float, int]]) -> OpStats:
    """``value_ms`` with the sample count and variance of all runs' samples taken together.

    ``runs`` holds each run's (mean_ms, std_ms, n), std with n-1 (``profiler_agent.timing``).
    The pooled sample variance is exact from those three: within-run sums of squares
    (n_i - 1) s_i^2 plus between-run n_i (m_i - M)^2, over N - 1 (0 for a single sample).
    A sample is one timing of ``iters_per_sample`` iterations, as the agent records it.
    """
    rs = [(float(m), float(s), int(n)) for m, s, n in runs]
    total = sum(n for _, _, n in rs)
    if total < 2:
        return OpStats(float(value_ms), total, 0.0)
    grand = math.fsum(n * m for m, _, n in rs) / total
    ss = math.fsum((n - 1) * s * s + n * (m - grand) ** 2 for m, s, n in rs)
    return OpStats(float(value_ms), total, ss / (total - 1))


def stats_from_lut(target: TargetLut) -> Dict[str, OpStats]:
    """Op key -> stats of one target of a ``nas-lut/1`` document (``lutcore.lutdoc``): the entry's value
    by the one rule, count and variance over its counted (not quarantined) runs; entries with no value
    are left out."""
    out: Dict[str, OpStats] = {}
    for e in target.entries:
        value = e.value()
        if value is None:
            continue
        runs = [(m.stats.mean_ms, m.stats.std_ms, m.stats.n) for m in e.measurements if not m.quarantined]
        out[e.key] = pooled_stats(value, runs)
    return out


# -- the two dialects -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Dialect:
    """What one of their latency tables expects of a network."""

    name: str
    stem_act: str
    block_acts: Tuple[str, ...]
    head: Tuple[Tuple[str, str], ...]  # (our family, their layer name), in order
    mbv3: bool  # expand:<mid channels>, -se:S-hs:H (MBv3LatencyTable); else expand:<ratio>


PROXYLESS = Dialect("proxyless", "relu6", ("relu6",), (("conv", "Conv_1"), ("pool_fc", "Logits")), False)
MBV3 = Dialect(
    "mbv3",
    "hswish",
    ("relu", "hswish"),
    (("conv", "Conv_1"), ("gap", "AvgPool2D"), ("conv", "Conv_2"), ("pool_fc", "Logits")),
    True,
)


def _hwc(h: int, w: int, c: int) -> str:
    return f"{h}x{w}x{c}"


def _io(spec: OpSpec) -> str:
    ho, wo = spec.out_hw
    out = _hwc(ho, wo, spec.c_out) if len(spec.out_shape) == 4 else str(spec.c_out)
    return f"input:{_hwc(spec.h, spec.w, spec.c_in)}-output:{out}"


def _conv_key(spec: OpSpec, layer: str, d: Dialect) -> str:
    """Their ``Conv`` (stem), ``Conv_1`` (final expand / feature mix) and ``Conv_2`` (MBv3's feature mix)."""
    if not isinstance(spec, Conv):
        raise _refuse(spec, f"their {layer} is a convolution")
    plain = spec.groups == 1 and spec.dilation == 1 and not spec.bias
    if layer == "Conv":
        ok = plain and spec.bn and (spec.kernel, spec.stride, spec.c_in, spec.act) == (3, 2, 3, d.stem_act)
        want = f"a 3x3 stride-2 conv-BN-{d.stem_act} from 3 channels"
    elif layer == "Conv_1":
        ok = plain and spec.bn and (spec.kernel, spec.stride) == (1, 1) and spec.act == d.stem_act
        want = f"a 1x1 conv-BN-{d.stem_act}"
    else:
        ok = plain and not spec.bn and (spec.kernel, spec.stride, spec.h, spec.w, spec.act) == (1, 1, 1, 1, "hswish")
        want = "a 1x1 conv without BN, h-swish, on the pooled 1x1 map"
    if not ok:
        raise _refuse(spec, f"their {layer} is {want}")
    return f"{layer}-{_io(spec)}"


def _block_key(spec: OpSpec, d: Dialect) -> Optional[str]:
    """``expanded_conv`` for an inverted residual; None for an identity skip (their zero block)."""
    if isinstance(spec, Skip):
        if spec.is_identity:
            return None
        raise _refuse(spec, "their networks skip a block only where its shape is kept (an identity)")
    if not isinstance(spec, InvertedResidual):
        raise _refuse(spec, "their blocks are inverted residuals (MBConv)")
    if spec.groups != 1 or spec.shuffle or spec.dilation != 1:
        raise _refuse(spec, "their MBConv has no groups, channel shuffle or dilation")
    if spec.act not in d.block_acts:
        raise _refuse(spec, f"their MBConv uses {' or '.join(d.block_acts)}")
    if spec.pw_expand and spec.hidden == spec.c_in:
        raise _refuse(spec, "their MBConv of expansion 1 has no expansion conv (pw_expand: false)")
    parts = [f"expanded_conv-{_io(spec)}"]
    if d.mbv3:
        if spec.se and not (spec.se_style == "mbv3" and spec.se == 0.25):
            raise _refuse(spec, "their SE is se=0.25 of the expanded width, se_style mbv3")
        if spec.hidden % 8:
            raise _refuse(spec, f"their expanded width is a multiple of 8 (make_divisible), not {spec.hidden}")
        parts.append(f"expand:{spec.hidden}")
    else:
        if spec.se:
            raise _refuse(spec, "ProxylessNAS's MBConv has no SE (use the mbv3 table)")
        if spec.mid or not float(spec.expansion).is_integer():
            raise _refuse(spec, "their key writes the expansion ratio as an integer")
        parts.append(f"expand:{int(spec.expansion)}")
    parts += [f"kernel:{spec.kernel}", f"stride:{spec.stride}", f"idskip:{int(spec.residual)}"]
    if d.mbv3:
        parts += [f"se:{int(bool(spec.se))}", f"hs:{int(spec.act == 'hswish')}"]
    return "-".join(parts)


def _head_key(spec: OpSpec, family: str, layer: str, d: Dialect) -> str:
    if spec.family != family:
        raise _refuse(spec, f"the {d.name} table's head is {_head_names(d)}; here {layer} must be {family}")
    if family == "conv":
        return _conv_key(spec, layer, d)
    if layer == "Logits" and d.mbv3 and (spec.h, spec.w) != (1, 1):
        raise _refuse(spec, "MBv3's Logits is the classifier on the pooled 1x1 map")
    return f"{layer}-{_io(spec)}"


def _head_names(d: Dialect) -> str:
    return " -> ".join(f"{layer} ({fam})" for fam, layer in d.head)


def _refuse(spec: OpSpec, why: str) -> FormatError:
    return FormatError(f"op {spec.key} has no counterpart in OFA/ProxylessNAS's latency table: {why}")


def layer_keys(space: Space, dialect: Dialect) -> List[Tuple[str, OpSpec]]:
    """(their key, our spec) for every op of the space at its resolution; refuses what does not map."""
    h, w = space.resolution
    if space.decoder is not None:
        raise FormatError(f"{space.name} has a decoder ({space.decoder.spec.key}); their tables are classifiers")
    if h != w:
        raise FormatError(f"{space.name} at {h}x{w}: their tables are queried for square images only")
    if not space.stem:
        raise FormatError(f"{space.name} has no stem; their tables start with the 3x3 stride-2 Conv")
    pairs: List[Tuple[str, OpSpec]] = [(_conv_key(space.stem[0].spec, "Conv", dialect), space.stem[0].spec)]
    blocks = [f.spec for f in space.stem[1:]] + [c for row in space.grid for c in row if not isinstance(c, Invalid)]
    for spec in blocks:
        key = _block_key(spec, dialect)
        if key is not None:
            pairs.append((key, spec))
    head = [f.spec for f in space.head]
    if len(head) != len(dialect.head):
        raise FormatError(
            f"{space.name}'s head has {len(head)} op(s); the {dialect.name} table's is {_head_names(dialect)}"
        )
    for spec, (fam, layer) in zip(head, dialect.head):
        pairs.append((_head_key(spec, fam, layer, dialect), spec))
    return pairs


def latency_table(spaces: Sequence[Space], stats: Mapping[str, OpStats], dialect: Dialect) -> Table:
    """Their table for a space at one or more resolutions (keys carry the shapes, so one file holds all).

    ``stats`` maps our op keys to their statistics (``stats_from_lut``). Every op the space needs
    must have a value: their code fails on the first missing key, so a partial table is refused.
    """
    table: Table = {}
    ours: Dict[str, str] = {}
    missing: List[str] = []
    for space in spaces:
        for key, spec in layer_keys(space, dialect):
            if ours.setdefault(key, spec.key) != spec.key:
                raise FormatError(f"ops {ours[key]} and {spec.key} would share their key {key}")
            st = stats.get(spec.key)
            if st is None:
                if spec.key not in missing:
                    missing.append(spec.key)
                continue
            table[key] = {"mean": float(st.mean_ms), "count": int(st.count), "var": float(st.var)}
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise FormatError(f"{len(missing)} op(s) of {spaces[0].name} have no measured value on this target: {shown}")
    return table


def dump_yaml(table: Table) -> str:
    import yaml

    return yaml.safe_dump(table, sort_keys=True)
