"""Export and import of the LUT as the versioned `nas-lut/1` document (docs/api.md), and the
formats existing NAS code reads: ProxylessNAS/Once-for-All YAML (docs/formats/ofa.md), the TF-NAS
latency pickle (docs/formats/tfnas.md) and FBNet's runtime LUT records (docs/formats/fbnet.md).

The document's shape is ``lutcore.lutdoc`` (one model for every reader and writer); this module
maps it to and from the tables, and bounds what an import may store.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pydantic import ValidationError
from sqlalchemy import Connection

from lut_server.ingest import describe
from lut_server.store import entries as lut_entries
from lut_server.store import measurements as stored
from lut_server.store import registry
from lut_server.store.devices import import_device, list_devices, of_target
from lut_server.store.registry import ensure_ops, ensure_target
from lut_server.tokens import check_device_name
from lut_server.truth_exchange import export_sections, import_sections
from lut_server.util import BadInput, bounded_json, clean_text, dump_json, now
from lutcore import lutdoc
from lutcore.errors import LutError
from lutcore.formats import OTHER_FORMATS, fbnet, ofa, tfnas
from lutcore.lutdoc import FIGURES, SCHEMA, LutDocument, TargetLut
from lutcore.ops import spec_from_dict
from lutcore.records import OpRecord

FORMATS = ("nas-lut", *OTHER_FORMATS)
OFA_FORMATS = {"proxyless-yaml": ("mobilenetv2", ofa.PROXYLESS), "ofa-mbv3-yaml": ("ofa-mbv3", ofa.MBV3)}


def export_doc(conn: Connection, tid: Optional[str] = None) -> Dict[str, Any]:
    """The whole LUT (or one target's) with every measurement and its provenance."""
    out_targets = []
    names: set = set()
    for t in registry.all_targets(conn, tid):
        ms = stored.by_op(conn, t["id"])
        entries = [{"key": e["key"], "spec": json.loads(e["spec"]), "macs": e["macs"], "params": e["params"],
                    **{f: e[f] for f in FIGURES}, "measurements": ms.get(e["id"], [])}
                   for e in lut_entries.with_ops(conn, t["id"])]
        out_targets.append({"id": t["tid"], "target": json.loads(t["spec"]), "lut_version": t["lut_version"],
                            "entries": entries, **export_sections(conn, t["id"], t["tid"])})
        if tid is not None:
            names.update(d["name"] for d in of_target(conn, t["id"]))
    devs = list_devices(conn, None if tid is None else sorted(names))
    # Built from rows that were validated on the way in, with lutdoc's field names; not re-validated here
    # (that doubles the time of a large export). Tests parse every export with lutdoc.parse.
    return {"schema": SCHEMA, "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "targets": out_targets, "devices": devs}


def import_doc(conn: Connection, raw: Any) -> Dict[str, Any]:
    """Merge a document: devices, targets, ops and measurements not yet present; entries recomputed.

    All-or-nothing (one transaction): a document with a bad part is refused whole, naming the part.
    """
    try:
        doc = lutdoc.parse(raw, "document")
    except lutdoc.DocumentError as e:
        raise BadInput(str(e)) from None
    for d in doc.devices:
        import_device(conn, d.dump())
    added = dups = n_entries = vals_added = 0
    for ti, tdoc in enumerate(doc.targets):
        target_id, n_new, n_rows = _import_target(conn, tdoc, f"targets[{ti}]")
        added += n_new
        dups += n_rows - n_new
        n_entries += len(tdoc.entries)
        vals_added += import_sections(conn, target_id, tdoc, f"targets[{ti}]")
    return {"targets": len(doc.targets), "entries": n_entries, "measurements_added": added, "duplicates": dups,
            "devices": len(doc.devices), "validations_added": vals_added}


def _import_target(conn: Connection, tdoc: TargetLut, where: str) -> Tuple[int, int, int]:
    """Store one target's measurements; (its row id, rows added, rows offered)."""
    try:
        target = tdoc.record()
    except ValidationError as e:
        raise BadInput(f"{where}.target: {describe(e)}") from None
    except ValueError as e:
        raise BadInput(f"{where}.id: {e}") from None
    if tdoc.id not in (None, target.id):
        raise BadInput(f"{where}.id {tdoc.id!r} does not match its target, whose id is {target.id!r}")
    target_id = ensure_target(conn, target)
    t = now()
    rows: List[Dict[str, Any]] = []
    specs = []
    for ei, entry in enumerate(tdoc.entries):
        ew = f"{where}.entries[{ei}]"
        if entry.predicted:
            continue  # a prediction is not a measurement: the importing LUT predicts for itself
        try:
            rec = OpRecord.model_validate({"key": entry.key, "spec": entry.spec})
        except ValidationError as err:
            raise BadInput(f"{ew}: {describe(err)}") from None
        specs.append(spec_from_dict(rec.spec))
        for mi, m in enumerate(entry.measurements):
            mw = f"{ew}.measurements[{mi}]"
            st = m.stats
            rows.append({"key": rec.key, "run_id": clean_text(m.run_id, f"{mw}.run_id", 64),
                         "device": check_device_name(m.device, f"{mw}.device"),
                         "fingerprint_digest": clean_text(m.fingerprint_digest or "", mw, 32),
                         "median_ms": st.median_ms, "mean_ms": st.mean_ms, "p10_ms": st.p10_ms, "p90_ms": st.p90_ms,
                         "stats": dump_json(st.model_dump(), f"{mw}.stats"),
                         "measured_at": None if m.measured_at is None else clean_text(m.measured_at, mw, 64),
                         "env": bounded_json(m.env, f"{mw}.env"), "job_id": None,
                         "quarantined_at": t if m.quarantined else None})
    ids = ensure_ops(conn, specs)
    for r in rows:
        r["op_id"] = ids[r.pop("key")]
        r["target_id"] = target_id
        r["received_at"] = t
    n_new = len(stored.insert(conn, rows))
    lut_entries.refresh_entries(conn, target_id, {r["op_id"] for r in rows})
    cur = registry.lut_version(conn, target_id)
    theirs = tdoc.lut_version if tdoc.lut_version is not None and tdoc.lut_version >= 0 else 0
    version = max(cur, min(theirs, 2**31 - 1))
    if n_new and cur >= theirs:
        version = cur + 1
    registry.set_version(conn, target_id, version)
    return target_id, n_new, len(rows)


# -- formats that existing NAS code reads ----------------------------------------------------
def _chain_spaces(doc: LutDocument, fmt: str, space: str, resolutions: Sequence[str]) -> List[Any]:
    """The space at each size (default its own) for a format that holds one target of a chain space."""
    from lutcore.spaces import get_space_def
    from lutcore.spaces.space import SpaceDef

    if len(doc.targets) != 1:
        raise BadInput(f"{fmt} holds one target; choose one with --target ({len(doc.targets)} in the export)")
    sdef = get_space_def(space)
    if not isinstance(sdef, SpaceDef):
        raise BadInput(f"{fmt}: {sdef.name} is a cell space; that table is for chain networks")
    return [sdef.at(r) for r in resolutions] if resolutions else [sdef.at()]


def to_ofa_yaml(doc: LutDocument, fmt: str, space: Optional[str] = None, resolutions: Sequence[str] = ()) -> str:
    """The latency table OFA's ``ProxylessNASLatencyTable`` / ``MBv3LatencyTable`` read, for one target and a
    space (default: mobilenetv2 / ofa-mbv3) at one or more resolutions (default: the space's own)."""
    name, dialect = OFA_FORMATS[fmt]
    try:
        spaces = _chain_spaces(doc, fmt, space or name, resolutions)
        return ofa.dump_yaml(ofa.latency_table(spaces, ofa.stats_from_lut(doc.targets[0]), dialect))
    except LutError as e:
        raise BadInput(f"{fmt}: {e}") from None


def to_tfnas_pickle(doc: LutDocument, space: Optional[str] = None, resolutions: Sequence[str] = ()) -> bytes:
    """The latency pickle TF-NAS's search reads (``--lookup_path``), for one target and a space (default
    tfnas) at one size: its ``base`` holds no size, so one file serves one."""
    fmt = "tfnas-pickle"
    if len(resolutions) > 1:
        raise BadInput(f"{fmt} holds one resolution (their 'base' has no size); export one file per size")
    try:
        (sp,) = _chain_spaces(doc, fmt, space or "tfnas", resolutions)
        values = {e.key: v for e in doc.targets[0].entries if (v := e.value()) is not None}
        return tfnas.dump_pickle(tfnas.latency_table(sp, values))
    except LutError as e:
        raise BadInput(f"{fmt}: {e}") from None


def to_fbnet_jsonl(doc: LutDocument, device: Optional[str] = None) -> str:
    """FBNet's runtime LUT (mobile-vision ``runtime_lut``): one ``LUTSchema`` record per entry, every target.

    ``device``: the name their code loads and matches the records by (``xavier``; default each target's
    id); one target only, since one name for several targets' records would merge them in their lookup."""
    if device is not None and len(doc.targets) != 1:
        raise BadInput(f"fbnet-jsonl: one device name (--fbnet-device) names one target's records; choose one with "
                       f"--target ({len(doc.targets)} in the export)")
    try:
        return fbnet.dump_jsonl([r for t in doc.targets for r in fbnet.records(t, device)])
    except LutError as e:
        raise BadInput(f"fbnet-jsonl: {e}") from None


def render(doc: Dict[str, Any], fmt: str, space: Optional[str] = None, resolutions: Sequence[str] = (),
           fbnet_device: Optional[str] = None) -> bytes:
    """The export in ``fmt``, as the bytes of the file (the pickle is binary, the others UTF-8)."""
    if fbnet_device is not None and fmt != "fbnet-jsonl":
        raise BadInput(f"a device name (--fbnet-device) is a field of fbnet-jsonl's records, not of {fmt}")
    if fmt == "nas-lut":
        return (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()
    if fmt not in FORMATS:
        raise BadInput(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
    try:
        parsed = lutdoc.parse(doc)
    except lutdoc.DocumentError as e:
        raise BadInput(str(e)) from None
    if any(t.predicted_entries() for t in parsed.targets):
        raise BadInput(f"format {fmt} has no field to mark a predicted entry (a value nobody measured would "
                       "read as measured); export predicted entries as nas-lut, or leave them out")
    if fmt in OFA_FORMATS:
        return to_ofa_yaml(parsed, fmt, space, resolutions).encode()
    if fmt == "tfnas-pickle":
        return to_tfnas_pickle(parsed, space, resolutions)
    return to_fbnet_jsonl(parsed, fbnet_device).encode()
