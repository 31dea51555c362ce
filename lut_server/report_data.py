"""What `lut report` draws, gathered from a database or over REST into one plain mapping.

Keys: ``cost_matrix`` (the POST /cost-matrix answer), ``validations`` (the GET /validations answer),
``devices`` (the devices that measured the target, with fingerprints), ``macs`` (the space's
[layers x candidates] MACs, None when the space is unknown here) and, when asked for, ``comparison``
(the GET /compare answer: an old target's LUT against this one's, over the space's ops). A cell space
adds ``cell_types`` (one [edges x ops] matrix per cell type) and its ``cost_matrix``/``macs`` are the
flat view of its /cell-costs answer (``report_cells``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from lutcore.errors import LutError


def from_db(db_url: Optional[str], target: str, space: str, resolution: Optional[str],
            old: Optional[str] = None) -> Dict[str, Any]:
    from lut_server import compare, spaces, validations
    from lut_server.db import Database, default_url
    from lut_server.store.devices import of_target
    from lut_server.store.registry import target_row
    from lut_server.util import BadInput

    db = Database(db_url or default_url())
    db.upgrade()
    try:
        with db.read() as conn:
            got = target_row(conn, target)
            if got is None:
                raise BadInput(f"unknown target {target!r} in {db.safe_url()}")
            sp = spaces.resolve(conn, space, resolution)
            cells = getattr(sp, "is_cell_space", False)
            cm = spaces.cell_costs(conn, sp, None, target) if cells else spaces.cost_matrix(conn, sp, None, target)
            vals = validations.report(conn, target, sp.name, sp.resolution_str)
            devs = of_target(conn, got[0])
            comparison = compare.compare(conn, old, target, sp) if old else None
    finally:
        db.dispose()
    if cells:
        return {**_cell_data(cm, vals, devs, {k: s.macs() for k, s in sp.unique_ops().items()}),
                "comparison": comparison}
    return {"cost_matrix": cm, "validations": vals, "devices": devs, "macs": spaces.chain(sp).mac_matrix(),
            "comparison": comparison}


def from_server(url: str, token: Optional[str], target: str, space: str, resolution: Optional[str],
                old: Optional[str] = None) -> Dict[str, Any]:
    """Three small reads (four with ``old``) over the shared client (lutcore.rest); its typed errors reach
    `lut` as one line."""
    from lutcore.rest import RestClient

    with RestClient(url, token, timeout=300, user_agent="lut report") as client:
        body = {"space": space, "resolution": resolution, "target": target}
        cells = _is_cell_space(space)
        cm = client.request("POST", "/cell-costs" if cells else "/cost-matrix", json=body, idempotent=True)
        params = {"target": target, "space": cm["space"], "resolution": cm["resolution"]}
        vals = client.request("GET", "/validations", params=params)
        devs = client.request("GET", "/devices", params={"target": target})
        comparison = client.request("GET", "/compare", params={"old": old, "new": target, **params}) if old else None
    if cells:
        return {**_cell_data(cm, vals, devs, _local_cell_macs(cm["space"], cm["resolution"])),
                "comparison": comparison}
    return {"cost_matrix": cm, "validations": vals, "devices": devs,
            "macs": _local_macs(cm["space"], cm["resolution"]), "comparison": comparison}


def _cell_data(cc: Dict[str, Any], vals: Any, devs: Any, macs_by_key: Dict[str, int]) -> Dict[str, Any]:
    from lut_server.report_cells import flat_macs, flat_view, type_matrices

    return {"cost_matrix": flat_view(cc), "cell_types": type_matrices(cc), "validations": vals, "devices": devs,
            "macs": flat_macs(cc, macs_by_key)}


def _is_cell_space(space: str) -> bool:
    from lutcore.spaces.cells import cell_space_defs

    return space in cell_space_defs()


def _local_cell_macs(space: str, resolution: str) -> Dict[str, int]:
    from lutcore.spaces import get_space

    return {k: s.macs() for k, s in get_space(space, resolution).unique_ops().items()}


def _local_macs(space: str, resolution: str) -> Optional[List[List[Optional[int]]]]:
    """MACs from lutcore's own definition of a built-in space; None for a custom one."""
    from lutcore.spaces import get_chain_space, space_names

    if space not in space_names():
        return None
    try:
        return get_chain_space(space, resolution).mac_matrix()
    except LutError:
        return None
