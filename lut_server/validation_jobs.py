"""Validation work as jobs: an agent on the board claims it like an op and posts validations.

A ``validate`` job names no op; its payload says which architectures of which space to time.
It waits behind the op jobs (a lower priority), since it needs their LUT entries, and is done
when a validation batch that names it arrives.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from sqlalchemy import Connection

from lut_server import validations as val
from lut_server.schemas import ValidateJobIn
from lut_server.store import jobs
from lut_server.store.registry import ensure_target, parse_target
from lut_server.util import BadInput, dump_json, now
from lutcore.errors import LutError
from lutcore.spaces import get_arch, parse_arch_list

MAX_ARCHS = 500


def prepare(conn: Connection, body: ValidateJobIn) -> Tuple[Dict[str, Any], int]:
    """The job's payload and how many networks it names, checked (up to MAX_ARCHS networks built by
    name) on a read connection, so the write transaction that queues it stays short."""
    name, res = val.canonical(conn, body.space, body.resolution)
    try:
        names = parse_arch_list(body.archs, name, body.seed, limit=MAX_ARCHS)
        for n in names:  # agents build each one by name: refuse what they could not
            arch = get_arch(n, res)
            if arch.space.name != name:
                raise ValueError(f"{n} is an architecture of {arch.space.name}, not of {name}")
    except (ValueError, LutError) as e:
        raise BadInput(f"archs: {e}") from None
    payload = {"space": name, "resolution": res, "archs": body.archs, "seed": body.seed, "rounds": body.rounds,
               "max_time_per_net": body.max_time_per_net, "calibrate": body.calibrate}
    if body.calibrate and body.fit_share != 0.5:  # the default stays out, so older payloads keep their digest
        payload["fit_share"] = body.fit_share
    return payload, len(names)


def enqueue(conn: Connection, body: ValidateJobIn, max_attempts: int,
            prepared: Optional[Tuple[Dict[str, Any], int]] = None) -> Dict[str, Any]:
    """One job per distinct request; asking again while it is open returns the open one."""
    tid = parse_target(body.target)
    payload, n_archs = prepared or prepare(conn, body)
    target_id = ensure_target(conn, tid)
    text = dump_json(payload, "payload")
    got = jobs.enqueue_validate(conn, target_id, text, body.priority, max_attempts, now())
    return {**got, "architectures": n_archs, **payload}


__all__ = ["ValidateJobIn", "enqueue", "prepare"]
