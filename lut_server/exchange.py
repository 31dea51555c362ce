"""Export and import of the LUT as the versioned `nas-lut/1` document (docs/api.md), and the
formats existing NAS code reads: ProxylessNAS/Once-for-All YAML (docs/formats/ofa.md) and FBNet-style
JSON lines.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, List, Optional, Sequence

from pydantic import ValidationError
from sqlalchemy import Connection

from lut_server.ingest import describe
from lut_server.store import entries as lut_entries
from lut_server.store import measurements as stored
from lut_server.store import registry
from lut_server.store.devices import import_device, list_devices
from lut_server.store.registry import ensure_ops, ensure_target
from lut_server.tokens import check_device_name
from lut_server.truth_exchange import export_sections, import_sections
from lut_server.util import BadInput, bounded_json, clean_text, dump_json, now
from lutcore.errors import LutError
from lutcore.formats import ofa
from lutcore.ops import spec_from_dict
from lutcore.records import OpRecord, Target, TimingStats

SCHEMA = "nas-lut/1"
FORMATS = ("nas-lut", "proxyless-yaml", "ofa-mbv3-yaml", "fbnet-jsonl")
OFA_FORMATS = {"proxyless-yaml": ("mobilenetv2", ofa.PROXYLESS), "ofa-mbv3-yaml": ("ofa-mbv3", ofa.MBV3)}


def export_doc(conn: Connection, tid: Optional[str] = None) -> Dict[str, Any]:
    """The whole LUT (or one target's) with every measurement and its provenance."""
    out_targets = []
    used_devices: set = set()
    for t in registry.all_targets(conn, tid):
        ms = stored.by_op(conn, t["id"])
        used_devices.update(m["device"] for runs in ms.values() for m in runs)
        entries = [{"key": e["key"], "spec": json.loads(e["spec"]), "macs": e["macs"], "params": e["params"],
                    "value_ms": e["value_ms"], "spread_pct": e["spread_pct"], "n_runs": e["n_runs"],
                    "measurements": ms.get(e["id"], [])} for e in lut_entries.with_ops(conn, t["id"])]
        out_targets.append({"id": t["tid"], "target": json.loads(t["spec"]), "lut_version": t["lut_version"],
                            "entries": entries, **export_sections(conn, t["id"], t["tid"])})
    devs = list_devices(conn, None if tid is None else sorted(used_devices))
    return {"schema": SCHEMA, "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "targets": out_targets, "devices": devs}


def _need(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), kind):
        raise BadInput(f"{where}.{key}: missing or not a {kind.__name__}")
    return obj[key]


def import_doc(conn: Connection, doc: Dict[str, Any]) -> Dict[str, Any]:
    """Merge a document: devices, targets, ops and measurements not yet present; entries recomputed.

    All-or-nothing (one transaction): a document with a bad part is refused whole, naming the part.
    """
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise BadInput(f"schema: expected {SCHEMA!r}, got {doc.get('schema') if isinstance(doc, dict) else doc!r}")
    devs = doc.get("devices") or []
    if not isinstance(devs, list):
        raise BadInput("devices: must be a list")
    for i, d in enumerate(devs):
        if not isinstance(d, dict):
            raise BadInput(f"devices[{i}]: must be an object")
        import_device(conn, d)
    added = dups = n_entries = vals_added = 0
    tlist = _need(doc, "targets", list, "document")
    for ti, tdoc in enumerate(tlist):
        where = f"targets[{ti}]"
        try:
            target = Target.model_validate(_need(tdoc, "target", dict, where))
        except ValidationError as e:
            raise BadInput(f"{where}.target: {describe(e)}") from None
        if tdoc.get("id") not in (None, target.id):
            raise BadInput(f"{where}.id {tdoc.get('id')!r} does not match its target, whose id is {target.id!r}")
        target_id = ensure_target(conn, target)
        rows: List[Dict[str, Any]] = []
        specs = []
        entries = _need(tdoc, "entries", list, where)
        for ei, e in enumerate(entries):
            ew = f"{where}.entries[{ei}]"
            try:
                rec = OpRecord.model_validate({"key": _need(e, "key", str, ew), "spec": _need(e, "spec", dict, ew)})
            except ValidationError as err:
                raise BadInput(f"{ew}: {describe(err)}") from None
            specs.append(spec_from_dict(rec.spec))
            for mi, m in enumerate(_need(e, "measurements", list, ew)):
                mw = f"{ew}.measurements[{mi}]"
                try:
                    stats = TimingStats.model_validate(_need(m, "stats", dict, mw))
                except ValidationError as err:
                    raise BadInput(f"{mw}.stats: {describe(err)}") from None
                measured_at = m.get("measured_at")
                rows.append({"key": rec.key, "run_id": clean_text(_need(m, "run_id", str, mw), f"{mw}.run_id", 64),
                             "device": check_device_name(_need(m, "device", str, mw), f"{mw}.device"),
                             "fingerprint_digest": clean_text(m.get("fingerprint_digest") or "", mw, 32),
                             "median_ms": stats.median_ms, "mean_ms": stats.mean_ms, "p10_ms": stats.p10_ms,
                             "p90_ms": stats.p90_ms, "stats": dump_json(stats.model_dump(), f"{mw}.stats"),
                             "measured_at": None if measured_at is None else clean_text(measured_at, mw, 64),
                             "env": bounded_json(m.get("env") or {}, f"{mw}.env"), "job_id": None})
        n_entries += len(entries)
        ids = ensure_ops(conn, specs)
        t = now()
        for r in rows:
            r["op_id"] = ids[r.pop("key")]
            r["target_id"] = target_id
            r["received_at"] = t
        n_new = len(stored.insert(conn, rows))
        added += n_new
        dups += len(rows) - n_new
        lut_entries.refresh_entries(conn, target_id, {r["op_id"] for r in rows})
        cur = registry.lut_version(conn, target_id)
        theirs = tdoc.get("lut_version") if isinstance(tdoc.get("lut_version"), int) else 0
        version = max(cur, min(theirs, 2**31 - 1))
        if n_new and cur >= theirs:
            version = cur + 1
        registry.set_version(conn, target_id, version)
        vals_added += import_sections(conn, target_id, tdoc, where)
    return {"targets": len(tlist), "entries": n_entries, "measurements_added": added, "duplicates": dups,
            "devices": len(devs), "validations_added": vals_added}


# -- formats that existing NAS code reads ----------------------------------------------------
def to_ofa_yaml(doc: Dict[str, Any], fmt: str, space: Optional[str] = None, resolutions: Sequence[str] = ()) -> str:
    """The latency table OFA's ``ProxylessNASLatencyTable`` / ``MBv3LatencyTable`` read, for one target and a
    space (default: mobilenetv2 / ofa-mbv3) at one or more resolutions (default: the space's own)."""
    from lutcore.spaces import get_space_def
    from lutcore.spaces.space import SpaceDef

    tdocs = doc["targets"]
    if len(tdocs) != 1:
        raise BadInput(f"{fmt} holds one target; choose one with --target ({len(tdocs)} in the export)")
    name, dialect = OFA_FORMATS[fmt]
    try:
        sdef = get_space_def(space or name)
        if not isinstance(sdef, SpaceDef):
            raise BadInput(f"{fmt}: {sdef.name} is a cell space; OFA's tables are for chain networks")
        spaces = [sdef.at(r) for r in resolutions] if resolutions else [sdef.at()]
        return ofa.dump_yaml(ofa.latency_table(spaces, ofa.stats_from_export(tdocs[0]), dialect))
    except LutError as e:
        raise BadInput(f"{fmt}: {e}") from None


def to_fbnet_jsonl(doc: Dict[str, Any]) -> str:
    """FBNet-style lines: op type, input shape, op args, latency (ms), plus our key and target."""
    lines = []
    for t in doc["targets"]:
        for e in t["entries"]:
            spec = dict(e["spec"])
            family = spec.pop("family")
            shape = [spec.pop("batch", 1), spec.pop("c_in"), spec.pop("h"), spec.pop("w")]
            lines.append(json.dumps({"op_type": family, "input_shape": shape, "args": spec,
                                     "latency": e["value_ms"], "unit": "ms", "key": e["key"], "target": t["id"],
                                     "n_runs": e["n_runs"], "spread_pct": e["spread_pct"]}, sort_keys=True))
    return "\n".join(lines) + ("\n" if lines else "")


def render(doc: Dict[str, Any], fmt: str, space: Optional[str] = None, resolutions: Sequence[str] = ()) -> str:
    if fmt == "nas-lut":
        return json.dumps(doc, indent=1, sort_keys=False) + "\n"
    if fmt in OFA_FORMATS:
        return to_ofa_yaml(doc, fmt, space, resolutions)
    if fmt == "fbnet-jsonl":
        return to_fbnet_jsonl(doc)
    raise BadInput(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
