"""Bounds on what a client may ask the server to expand, checked on the raw definition *before*
lutcore expands ``repeat`` or builds a grid, and before any write lock: a 362-byte definition must
not cost seconds of CPU and hundreds of MB while other writers wait."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from lut_server.util import BadInput, dump_json

MAX_LAYERS = 256  # searchable layers after `repeat`
MAX_FIXED_OPS = 32  # stem / head
MAX_CANDIDATES = 64
MAX_CHANNELS = 8192
MAX_SIDE = 8192  # input / resolution height and width
MAX_BATCH = 1024
MAX_DEFINITION_BYTES = 64 * 1024
MAX_NAME = 128
MAX_DESCRIPTION = 2000


def _int(v: Any, where: str, hi: int) -> None:
    if isinstance(v, int) and not isinstance(v, bool) and v > hi:
        raise BadInput(f"{where}: {v} is more than the {hi} this server accepts")


def check_resolution(text: Optional[str], where: str = "resolution") -> None:
    if text is None:
        return
    parts = str(text).lower().replace("*", "x").split("x")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        for p in parts:
            _int(int(p), where, MAX_SIDE)


def check_definition(d: Mapping[str, Any]) -> None:
    """BadInput naming the first field over a bound; shape errors are left to lutcore."""
    size = len(dump_json(d, "space"))
    if size > MAX_DEFINITION_BYTES:
        raise BadInput(f"space: the definition is {size} bytes as JSON, more than {MAX_DEFINITION_BYTES}")
    name = d.get("name")
    if isinstance(name, str) and len(name) > MAX_NAME:
        raise BadInput(f"space.name: longer than {MAX_NAME} characters")
    desc = d.get("description")
    if isinstance(desc, str) and len(desc) > MAX_DESCRIPTION:
        raise BadInput(f"space.description: longer than {MAX_DESCRIPTION} characters")
    inp = d.get("input")
    if isinstance(inp, (list, tuple)) and len(inp) == 3:
        _int(inp[0], "space.input[0]", MAX_CHANNELS)
        _int(inp[1], "space.input[1]", MAX_SIDE)
        _int(inp[2], "space.input[2]", MAX_SIDE)
    _int(d.get("batch"), "space.batch", MAX_BATCH)
    for part in ("stem", "head"):
        ops = d.get(part)
        if isinstance(ops, list):
            if len(ops) > MAX_FIXED_OPS:
                raise BadInput(f"space.{part}: {len(ops)} ops, more than {MAX_FIXED_OPS}")
            for i, op in enumerate(ops):
                if isinstance(op, Mapping):
                    for k in ("c_out", "classes"):
                        _int(op.get(k), f"space.{part}[{i}].{k}", MAX_CHANNELS)
    cat = d.get("catalogue")
    if isinstance(cat, Mapping) and isinstance(cat.get("candidates"), list) and len(cat["candidates"]) > MAX_CANDIDATES:
        raise BadInput(f"space.catalogue.candidates: {len(cat['candidates'])}, more than {MAX_CANDIDATES}")
    dec = d.get("decoder")
    if isinstance(dec, Mapping):
        for k in ("mid", "classes"):
            _int(dec.get(k), f"space.decoder.{k}", MAX_CHANNELS)
    layers = d.get("layers")
    if not isinstance(layers, list):
        return
    total = 0
    for i, raw in enumerate(layers):
        if not isinstance(raw, Mapping):
            continue
        _int(raw.get("c_out"), f"space.layers[{i}].c_out", MAX_CHANNELS)
        rep = raw.get("repeat", 1)
        if isinstance(rep, int) and not isinstance(rep, bool):
            total += max(rep, 0)
        else:
            total += 1
        if total > MAX_LAYERS:
            raise BadInput(f"space.layers[{i}].repeat: the space would have more than {MAX_LAYERS} layers "
                           "after repeat")
