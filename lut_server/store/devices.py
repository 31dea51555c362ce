"""Devices (boards) and their fingerprints; a changed fingerprint is kept as history, not overwritten."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from sqlalchemy import Connection, select, update

from lut_server.schema import devices, fingerprints
from lut_server.tokens import check_device_name
from lut_server.util import BadInput, clean_text, digest_of, dump_json, insert_ignore, load_json, now


def register_device(conn: Connection, name: str, device_class: str, fingerprint: Dict[str, Any]) -> Dict[str, Any]:
    """Create or update a device; report whether its fingerprint changed since last time."""
    check_device_name(name, "name")
    check_device_name(device_class, "device_class")
    fp_text = dump_json(fingerprint, "fingerprint")
    digest = digest_of(fingerprint)
    t = now()
    row = conn.execute(select(devices).where(devices.c.name == name)).mappings().first()
    if row is None:
        insert_ignore(conn, devices, [{"name": name, "device_class": device_class, "fingerprint": fp_text,
                                       "fingerprint_digest": digest, "registered_at": t, "updated_at": t}], ["name"])
        row = conn.execute(select(devices).where(devices.c.name == name)).mappings().one()
        previous: Optional[str] = None
    else:
        previous = row["fingerprint_digest"]
        if previous != digest or row["device_class"] != device_class:
            conn.execute(update(devices).where(devices.c.id == row["id"]).values(
                fingerprint=fp_text, fingerprint_digest=digest, device_class=device_class, updated_at=t))
    insert_ignore(conn, fingerprints, [{"device_id": row["id"], "digest": digest, "fingerprint": fp_text,
                                        "first_seen": t}], ["device_id", "digest"])
    return {"name": name, "device_class": device_class, "fingerprint_digest": digest,
            "changed": previous is not None and previous != digest, "previous_digest": previous}


def ensure_device(conn: Connection, name: str, device_class: str, fingerprint: Dict[str, Any]) -> str:
    """The fingerprint digest this batch's measurements are recorded under (registers unknown devices)."""
    row = conn.execute(select(devices.c.fingerprint_digest, devices.c.device_class)
                       .where(devices.c.name == name)).first()
    if row is None:
        return register_device(conn, name, device_class, fingerprint)["fingerprint_digest"]
    if fingerprint and digest_of(fingerprint) != row[0]:  # the board changed since it registered
        return register_device(conn, name, row[1], fingerprint)["fingerprint_digest"]
    return str(row[0])


def list_devices(conn: Connection, names: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    q = select(devices).order_by(devices.c.name)
    if names is not None:
        q = q.where(devices.c.name.in_(names))
    out = []
    for r in conn.execute(q).mappings().all():
        hist = conn.execute(select(fingerprints).where(fingerprints.c.device_id == r["id"])
                            .order_by(fingerprints.c.first_seen, fingerprints.c.digest)).mappings().all()
        out.append({"name": r["name"], "device_class": r["device_class"], "fingerprint": load_json(r["fingerprint"]),
                    "fingerprint_digest": r["fingerprint_digest"],
                    "history": [{"digest": h["digest"], "fingerprint": load_json(h["fingerprint"]),
                                 "first_seen": h["first_seen"]} for h in hist]})
    return out


def of_target(conn: Connection, target_id: int) -> List[Dict[str, Any]]:
    """The devices that measured ops or validated networks for the target, with their fingerprints."""
    from lut_server.store import measurements, validations

    names = measurements.devices_of(conn, target_id) | validations.devices_of(conn, target_id)
    return list_devices(conn, sorted(names))


def import_device(conn: Connection, d: Dict[str, Any]) -> None:
    """Restore a device and its fingerprint history from an export document."""
    name = check_device_name(d.get("name"), "devices[].name")
    dclass = check_device_name(d.get("device_class"), "devices[].device_class")
    history = d.get("history") or [{"fingerprint": d.get("fingerprint") or {}, "first_seen": now()}]
    for h in history:
        fp = h.get("fingerprint") or {}
        if not isinstance(fp, dict):
            raise BadInput(f"device {name}: fingerprint must be a mapping")
    current = d.get("fingerprint") or {}
    t = now()
    row = conn.execute(select(devices).where(devices.c.name == name)).mappings().first()
    if row is None:
        insert_ignore(conn, devices, [{"name": name, "device_class": dclass, "fingerprint": dump_json(current),
                                       "fingerprint_digest": digest_of(current), "registered_at": t,
                                       "updated_at": t}], ["name"])
        row = conn.execute(select(devices).where(devices.c.name == name)).mappings().one()
    rows = []
    for h in history:
        fp = h.get("fingerprint") or {}
        first = h.get("first_seen")
        rows.append({"device_id": row["id"], "digest": digest_of(fp), "fingerprint": dump_json(fp),
                     "first_seen": float(first) if isinstance(first, (int, float)) else t})
    insert_ignore(conn, fingerprints, rows, ["device_id", "digest"])
    clean_text(name, "name")
