"""Search-space definitions (what a user writes) and their resolution into op specs.

A definition is a plain mapping, the same for built-ins (``data/*.yaml``) and user files:

    name: my-space
    input: [3, 224, 224]
    catalogue: fbnet                  # a registered name, or an inline {candidates: [...]}
    stem:   [{op: conv, c_out: 16, kernel: 3, stride: 2, act: relu}]
    layers: [{c_out: 24, stride: 2, repeat: 4, act: relu}, ...]   # c_in is chained
    head:   [{op: conv, c_out: 1984, kernel: 1}, {op: pool_fc, classes: 1000}]
    decoder: {op: lr_aspp, mid: 128, classes: 19, low_level_layer: 7, ...}

Errors name the offending field as a path (``layers[3].stride``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

from lutcore.catalogues import Catalogue, Invalid, catalogue_from_dict, get_catalogue
from lutcore.errors import LutError, SpaceError, SpecError
from lutcore.ops import ACTIVATIONS, LRASPP, Conv, DepthwiseASPP, InvertedResidual, OpSpec, PoolFC

if TYPE_CHECKING:
    from lutcore.spaces.space import Space

Resolution = Tuple[int, int]
Cell = Union[OpSpec, Invalid]

_FIXED_OPS = {"conv": Conv, "ir": InvertedResidual, "pool_fc": PoolFC}
_LAYER_FIELDS = {"c_out", "stride", "repeat", "act"}
_TOP_FIELDS = {"name", "description", "input", "batch", "catalogue", "stem", "layers", "head", "decoder"}


def parse_resolution(text: Union[str, Resolution, None]) -> Optional[Resolution]:
    """``"256x512"`` -> (256, 512) as (height, width)."""
    if text is None or isinstance(text, tuple):
        return text
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise SpaceError("resolution", f"{text!r} is not HxW, e.g. 256x512") from None
    if h <= 0 or w <= 0:
        raise SpaceError("resolution", f"{text!r} must be positive")
    return h, w


@dataclasses.dataclass(frozen=True)
class LayerDef:
    c_in: int
    c_out: int
    stride: int = 1
    act: str = "relu"


@dataclasses.dataclass(frozen=True)
class SpaceDef:
    """A validated, resolution-free definition. ``at()`` places it at a resolution."""

    name: str
    input: Tuple[int, int, int]
    catalogue: Catalogue
    stem: Tuple[Mapping[str, Any], ...]
    layers: Tuple[LayerDef, ...]
    head: Tuple[Mapping[str, Any], ...] = ()
    decoder: Optional[Mapping[str, Any]] = None
    batch: int = 1
    description: str = ""
    source: Optional[Mapping[str, Any]] = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def default_resolution(self) -> Resolution:
        return self.input[1], self.input[2]

    @property
    def total_stride(self) -> int:
        s = 1
        for op in self.stem:
            s *= op.get("stride", 1)
        for layer in self.layers:
            s *= layer.stride
        return s

    def at(self, resolution: Union[str, Resolution, None] = None) -> Space:
        from lutcore.spaces.space import Space  # late: Space builds on this module

        res = parse_resolution(resolution) or self.default_resolution
        return Space.build(self, res)

    def to_dict(self) -> Dict[str, Any]:
        """The definition as a user would write it (round-trips through ``space_from_dict``)."""
        if self.source is not None:
            return json.loads(json.dumps(self.source))
        raise LutError(f"space {self.name} was not built from a mapping")


def _req(d: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in d:
        raise SpaceError(f"{path}.{key}" if path else key, "is required")
    return d[key]


def _pos_int(v: Any, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise SpaceError(path, f"must be a positive integer, not {v!r}")
    return v


def _fixed_ops(raw: Any, path: str) -> Tuple[Mapping[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpaceError(path, "must be a list of ops")
    out = []
    for i, op in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(op, Mapping):
            raise SpaceError(p, "must be a mapping")
        kind = _req(op, "op", p)
        if kind not in _FIXED_OPS:
            raise SpaceError(f"{p}.op", f"unknown op {kind!r}; known: {', '.join(sorted(_FIXED_OPS))}")
        out.append(dict(op))
    return tuple(out)


def space_from_dict(data: Mapping[str, Any], path: str = "") -> SpaceDef:
    """Validate a space definition; every error points at the offending field."""
    if not isinstance(data, Mapping):
        raise SpaceError(path, "a space definition must be a mapping")
    pre = f"{path}." if path else ""
    for k in data:
        if k not in _TOP_FIELDS:
            raise SpaceError(f"{pre}{k}", f"unknown field; known: {', '.join(sorted(_TOP_FIELDS))}")
    name = _req(data, "name", path)
    if not isinstance(name, str) or not name or any(c in name for c in " /:@"):
        raise SpaceError(f"{pre}name", f"{name!r} must be a non-empty name without spaces, '/', ':' or '@'")
    inp = _req(data, "input", path)
    if not (isinstance(inp, (list, tuple)) and len(inp) == 3):
        raise SpaceError(f"{pre}input", f"must be [channels, height, width], not {inp!r}")
    inp = tuple(_pos_int(v, f"{pre}input[{i}]") for i, v in enumerate(inp))
    batch = _pos_int(data.get("batch", 1), f"{pre}batch")

    cat = _req(data, "catalogue", path)
    try:
        catalogue = catalogue_from_dict(cat, f"{pre}catalogue") if isinstance(cat, Mapping) else get_catalogue(cat)
    except LutError as e:
        if isinstance(e, SpaceError):
            raise
        raise SpaceError(f"{pre}catalogue", str(e)) from None

    stem = _fixed_ops(data.get("stem"), f"{pre}stem")
    head = _fixed_ops(data.get("head"), f"{pre}head")
    raw_layers = _req(data, "layers", path)
    if not isinstance(raw_layers, list) or not raw_layers:
        raise SpaceError(f"{pre}layers", "must be a non-empty list")
    c = inp[0]
    for op in stem:
        c = op.get("c_out", c)
    layers: List[LayerDef] = []
    for i, raw in enumerate(raw_layers):
        p = f"{pre}layers[{i}]"
        if not isinstance(raw, Mapping):
            raise SpaceError(p, "must be a mapping like {c_out: 24, stride: 2}")
        for k in raw:
            if k not in _LAYER_FIELDS:
                raise SpaceError(f"{p}.{k}", f"unknown field; known: {', '.join(sorted(_LAYER_FIELDS))}")
        c_out = _pos_int(_req(raw, "c_out", p), f"{p}.c_out")
        stride = raw.get("stride", 1)
        if stride not in (1, 2) or isinstance(stride, bool):
            raise SpaceError(f"{p}.stride", f"must be 1 or 2, not {stride!r}")
        act = raw.get("act", "relu")
        if act not in ACTIVATIONS:
            raise SpaceError(f"{p}.act", f"must be one of {', '.join(ACTIVATIONS)}, not {act!r}")
        for r in range(_pos_int(raw.get("repeat", 1), f"{p}.repeat")):
            layers.append(LayerDef(c, c_out, stride if r == 0 else 1, act))
            c = c_out

    decoder = data.get("decoder")
    if decoder is not None:
        dp = f"{pre}decoder"
        if not isinstance(decoder, Mapping):
            raise SpaceError(dp, "must be a mapping")
        if _req(decoder, "op", dp) not in ("lr_aspp", "aspp_dw"):
            raise SpaceError(f"{dp}.op", f"must be lr_aspp or aspp_dw, not {decoder['op']!r}")
        low = _req(decoder, "low_level_layer", dp)
        if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low < len(layers):
            raise SpaceError(f"{dp}.low_level_layer", f"must be a layer index in 0..{len(layers) - 1}, not {low!r}")
        for k in ("mid", "classes"):
            _pos_int(_req(decoder, k, dp), f"{dp}.{k}")
        decoder = dict(decoder)
    src = json.loads(json.dumps(dict(data)))
    sdef = SpaceDef(name, inp, catalogue, stem, tuple(layers), head, decoder, batch, data.get("description", ""), src)
    try:  # resolve once at the default resolution so shape errors surface at load time
        sdef.at()
    except SpaceError as e:
        raise SpaceError(f"{pre}{e.path}" if e.path else path, e.reason) from None
    return sdef


def load_space_file(path: Union[str, Path]) -> List[SpaceDef]:
    """Spaces from a YAML or JSON file holding one definition or a list of them."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpaceError(str(p), f"cannot read: {e.strerror}") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise SpaceError(str(p), f"not valid JSON: {e}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpaceError(str(p), f"not valid YAML: {e}") from None
    items = data if isinstance(data, list) else [data]
    return [space_from_dict(d, f"{p.name}[{i}]" if isinstance(data, list) else p.name) for i, d in enumerate(items)]


def fixed_spec(op: Mapping[str, Any], c_in: int, h: int, w: int, batch: int, path: str) -> OpSpec:
    """The op spec of a stem/head entry placed at an input shape."""
    params = {k: v for k, v in op.items() if k not in ("op", "classes")}
    kind = op["op"]
    if kind == "pool_fc":
        params["c_out"] = op.get("classes", params.get("c_out"))
    params.setdefault("c_out", c_in)
    try:
        return _FIXED_OPS[kind](c_in=c_in, h=h, w=w, batch=batch, **params)
    except SpecError as e:
        raise SpaceError(f"{path}.{e.field}", f"{e.value!r}: {e.reason}") from None
    except TypeError as e:
        raise SpaceError(path, str(e)) from None


def decoder_spec(dec: Mapping[str, Any], deep: Tuple[int, int, int], low: Tuple[int, int, int], batch: int) -> OpSpec:
    """The decoder's spec; LR-ASPP's pool window shrinks to fit inputs smaller than 49 cells."""
    (c, h, w), (cl, hl, wl) = deep, low
    common = dict(c_in=c, h=h, w=w, c_low=cl, h_low=hl, w_low=wl, c_out=dec["classes"], mid=dec["mid"], batch=batch)
    try:
        if dec["op"] == "lr_aspp":
            k = dec.get("pool_kernel", 49)
            kh, kw = (k, k) if isinstance(k, int) else tuple(k)
            s = dec.get("pool_stride", [16, 20])
            sh, sw = (s, s) if isinstance(s, int) else tuple(s)
            return LRASPP(
                **common, pool_kernel=(min(kh, h), min(kw, w)), pool_stride=(sh, sw), upsample=dec.get("upsample", 8)
            )
        return DepthwiseASPP(**common, rates=tuple(dec.get("rates", (6, 12, 18))), upsample=dec.get("upsample", 4))
    except SpecError as e:
        raise SpaceError(f"decoder.{e.field}", f"{e.value!r}: {e.reason}") from None
