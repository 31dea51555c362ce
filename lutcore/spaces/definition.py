"""The parser of search-space definitions (what a user writes) into ``SpaceDef``.

A definition is a plain mapping, the same for built-ins (``data/*.yaml``) and user files:

    name: my-space
    input: [3, 224, 224]
    catalogue: fbnet                  # a registered name, or an inline {candidates: [...]}
    stem:   [{op: conv, c_out: 16, kernel: 3, stride: 2, act: relu}]
    layers: [{c_out: 24, stride: 2, repeat: 4, act: relu}, ...]   # c_in is chained
    # a layer may also set candidate fields for its blocks (fields: {se: 0.25, se_style: mbv3}) and
    # keep its first repeats from being skipped (min_depth: 2, OFA's elastic depth 2-4)
    head:   [{op: conv, c_out: 1984, kernel: 1}, {op: pool_fc, classes: 1000}]
    decoder: {op: lr_aspp, mid: 128, classes: 19, low_level_layer: 7, ...}

Stem and head entries may use any op family registered with the ``fixed`` role, the decoder any
family with the ``decoder`` role (``lutcore.ops.registry``). Errors name the offending field as a
path (``layers[3].stride``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Mapping, Tuple, Union

from lutcore.catalogues import catalogue_from_dict, get_catalogue
from lutcore.errors import LutError, SpaceError
from lutcore.ops import ACTIVATIONS, families, get_family
from lutcore.spaces.space import LayerDef, SpaceDef

_LAYER_FIELDS = {"c_out", "stride", "repeat", "act", "fields", "min_depth"}
_TOP_FIELDS = {"name", "description", "input", "batch", "catalogue", "stem", "layers", "head", "decoder"}


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
        if kind not in families("fixed"):
            raise SpaceError(f"{p}.op", f"unknown op {kind!r}; known: {', '.join(families('fixed'))}")
        out.append(dict(op))
    return tuple(out)


def _layer_fields(raw: Any, path: str) -> Tuple[Tuple[str, Any], ...]:
    """A layer's defaults for its candidates' fields; each must be a field of some block family."""
    if not isinstance(raw, Mapping):
        raise SpaceError(path, "must be a mapping of candidate fields, e.g. {se: 0.25}")
    known = {f for fam in families("block") for f in get_family(fam).fields}
    for k, v in raw.items():
        if k not in known:
            raise SpaceError(f"{path}.{k}", f"not a field of any block family; known: {', '.join(sorted(known))}")
        if isinstance(v, (list, dict)):
            raise SpaceError(f"{path}.{k}", "must be a number, a string or true/false")
    return tuple(sorted(raw.items()))


def space_from_dict(data: Mapping[str, Any], path: str = "", resolve: bool = True) -> SpaceDef:
    """Validate a space definition; every error points at the offending field. ``resolve`` also builds it
    at its default resolution, so that shape errors surface at load time (the built-ins skip it: every
    process would build them all at start, and the suite resolves each one)."""
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
        repeat = _pos_int(raw.get("repeat", 1), f"{p}.repeat")
        min_depth = raw.get("min_depth", 0)
        if isinstance(min_depth, bool) or not isinstance(min_depth, int) or not 0 <= min_depth <= repeat:
            raise SpaceError(f"{p}.min_depth", f"must be an integer in 0..{repeat} (the repeat), not {min_depth!r}")
        fields = _layer_fields(raw.get("fields", {}), f"{p}.fields")
        for r in range(repeat):
            layers.append(LayerDef(c, c_out, stride if r == 0 else 1, act, fields, r >= min_depth))
            c = c_out

    decoder = data.get("decoder")
    if decoder is not None:
        dp = f"{pre}decoder"
        if not isinstance(decoder, Mapping):
            raise SpaceError(dp, "must be a mapping")
        if _req(decoder, "op", dp) not in families("decoder"):
            raise SpaceError(f"{dp}.op", f"must be one of {', '.join(families('decoder'))}, not {decoder['op']!r}")
        low = _req(decoder, "low_level_layer", dp)
        if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low < len(layers):
            raise SpaceError(f"{dp}.low_level_layer", f"must be a layer index in 0..{len(layers) - 1}, not {low!r}")
        _pos_int(_req(decoder, "classes", dp), f"{dp}.classes")
        decoder = dict(decoder)
    src = json.loads(json.dumps(dict(data)))
    sdef = SpaceDef(name, inp, catalogue, stem, tuple(layers), head, decoder, batch, data.get("description", ""), src)
    if not resolve:
        return sdef
    try:  # resolve once at the default resolution so shape errors surface at load time
        sdef.at()
    except SpaceError as e:
        raise SpaceError(f"{pre}{e.path}" if e.path else path, e.reason) from None
    return sdef


def load_space_file(path: Union[str, Path], resolve: bool = True) -> List[SpaceDef]:
    """Spaces from a YAML or JSON file holding one definition or a list of them (``resolve``: see
    ``space_from_dict``)."""
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
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 5x faster
        except yaml.YAMLError as e:
            raise SpaceError(str(p), f"not valid YAML: {e}") from None
    items = data if isinstance(data, list) else [data]
    return [space_from_dict(d, f"{p.name}[{i}]" if isinstance(data, list) else p.name, resolve)
            for i, d in enumerate(items)]
