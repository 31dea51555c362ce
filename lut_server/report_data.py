"""What `lut report` draws, gathered from a database or over REST into one plain mapping.

Keys: ``cost_matrix`` (the POST /cost-matrix answer), ``validations`` (the GET /validations answer),
``devices`` (the devices that measured the target, with fingerprints) and ``macs`` (the space's
[layers x candidates] MACs, None when the space is unknown here).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from lutcore.errors import LutError


def from_db(db_url: Optional[str], target: str, space: str, resolution: Optional[str]) -> Dict[str, Any]:
    from lut_server import spaces, validations
    from lut_server.db import Database, default_url
    from lut_server.store import measurements
    from lut_server.store import validations as stored_validations
    from lut_server.store.devices import list_devices
    from lut_server.store.registry import target_row
    from lut_server.util import BadInput

    db = Database(db_url or default_url())
    db.upgrade()
    try:
        with db.read() as conn:
            if target_row(conn, target) is None:
                raise BadInput(f"unknown target {target!r} in {db.safe_url()}")
            sp = spaces.resolve(conn, space, resolution)
            cm = spaces.cost_matrix(conn, sp, None, target)
            vals = validations.report(conn, target, sp.name, sp.resolution_str)
            tid = target_row(conn, target)[0]  # type: ignore[index]
            names = measurements.devices_of(conn, tid) | stored_validations.devices_of(conn, tid)
            devs = list_devices(conn, sorted(names))
    finally:
        db.dispose()
    return {"cost_matrix": cm, "validations": vals, "devices": devs, "macs": sp.mac_matrix()}


def from_server(url: str, token: Optional[str], target: str, space: str, resolution: Optional[str]) -> Dict[str, Any]:
    import httpx

    from lut_server.util import BadInput

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/") + "/api/v1"

    def call(method: str, path: str, **kw: Any) -> Any:
        try:
            r = httpx.request(method, base + path, headers=headers, timeout=300, **kw)
        except httpx.HTTPError as e:
            raise BadInput(f"cannot reach {url}: {e}") from None
        if r.status_code >= 400:
            raise BadInput(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json()

    cm = call("POST", "/cost-matrix", json={"space": space, "resolution": resolution, "target": target})
    params = {"target": target, "space": cm["space"], "resolution": cm["resolution"]}
    vals = call("GET", "/validations", params=params)
    doc = call("GET", "/export", params={"target": target})
    return {"cost_matrix": cm, "validations": vals, "devices": doc.get("devices") or [],
            "macs": _local_macs(cm["space"], cm["resolution"])}


def _local_macs(space: str, resolution: str) -> Optional[List[List[Optional[int]]]]:
    """MACs from lutcore's own definition of a built-in space; None for a custom one."""
    from lutcore.spaces import get_space, space_names

    if space not in space_names():
        return None
    try:
        return get_space(space, resolution).mac_matrix()
    except LutError:
        return None
