"""Errors the search client raises. Each says what is wrong and what to do about it."""

from __future__ import annotations

import json
from typing import List, Optional, Sequence

from lutcore.errors import LutError
from lutcore.rest import RestError, Unavailable


class ClientError(LutError):
    """Base class of the search client's errors."""


class ServerError(ClientError, RestError):
    """The server answered with an error status (4xx/5xx) or a body that is not what the contract says;
    ``status`` and ``detail`` are the server's."""


class TransportError(ClientError, Unavailable):
    """The server could not be reached, or kept answering "not now", after every retry."""


def measure_hint(space: str, resolution: Optional[str], target: str, server: Optional[str]) -> str:
    """The exact steps that get a space's missing ops measured on a target."""
    url = server or "http://LUT_SERVER:8000"
    base, _, settings = target.partition("@")
    parts = base.split("/")
    dev = parts[0]
    backend = parts[1] if len(parts) > 1 else "BACKEND"
    flags = f" --precision {parts[2]}" if len(parts) > 2 and parts[2] != "fp32" else ""
    if len(parts) > 3:
        flags += f" --batch-size {parts[3][1:]}"
    for item in filter(None, settings.split(",")):
        k, _, v = item.partition("=")
        if k == "threads":
            flags += f" --threads {v}"
    body = json.dumps({"space": space, "resolution": resolution, "target": target})
    return (
        "to get them measured:\n"
        "  1. enqueue the space's ops for the target (idempotent):\n"
        "       client.cost_matrix(..., missing=\"wait\")   # enqueues, then waits for the agents\n"
        f"     or: lut register {space if isinstance(space, str) else 'SPACE.yaml'} --target '{target}'"
        f"{' --resolution ' + resolution if resolution else ''} --server {url} --token SEARCH_TOKEN\n"
        f"     or: curl -X POST {url}/api/v1/spaces -H 'Authorization: Bearer SEARCH_TOKEN' "
        f"-H 'Content-Type: application/json' -d '{body}'\n"
        "     (SEARCH_TOKEN from `lut token create --search` on the server)\n"
        "     (a space that is not built in goes as its definition mapping under \"space\")\n"
        f"  2. on a board of that target ({dev}), with an agent token made on the server by\n"
        f"     `lut token create --device {dev}-01 --device-class {dev}`:\n"
        f"       profiler-agent run --device {dev} --name {dev}-01 --backend {backend}{flags} --server {url}"
        " --token TOKEN --exit-when-idle"
    )


class MissingEntriesError(ClientError):
    """The LUT lacks entries a cost matrix or prediction needs; lists them and how to get them measured."""

    def __init__(
        self,
        missing: Sequence[str],
        space: str,
        resolution: Optional[str],
        target: str,
        server: Optional[str] = None,
        total: Optional[int] = None,
    ) -> None:
        self.missing: List[str] = list(missing)
        self.space = space
        self.resolution = resolution
        self.target = target
        self.total = total
        shown = "\n".join(f"  {k}" for k in self.missing[:20])
        more = f"\n  ... and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
        of = f" of {total}" if total is not None else ""
        where = "the LUT file" if server is None else f"the LUT at {server}"
        super().__init__(
            f"{len(self.missing)}{of} ops of {space}"
            f"{' at ' + resolution if resolution else ''} are not measured on target {target} in {where}:\n"
            f"{shown}{more}\n{measure_hint(space, resolution, target, server)}\n"
            "or pass missing=\"nan\" to get NaN for them."
        )


class WaitTimeout(MissingEntriesError):
    """``missing="wait"`` ran out of time before agents measured every op."""


class MeasurementFailed(MissingEntriesError):
    """Agents gave up on some ops (their jobs are parked after repeated failures): waiting would not help."""

    def __init__(self, parked: Sequence[dict], space: str, resolution: Optional[str], target: str,
                 server: Optional[str] = None) -> None:
        self.parked = list(parked)
        super().__init__([p["key"] for p in self.parked], space, resolution, target, server)
        lines = "\n".join(f"  {p['key']}: {p.get('error') or 'no error recorded'}" for p in self.parked[:10])
        self.args = (
            f"agents could not measure {len(self.parked)} ops of {space} on {target}; their jobs are parked "
            f"after {self.parked[0].get('attempts', '?')} attempts:\n{lines}\n"
            "fix the cause on the board (see `lut status`), then register the space again to requeue them",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class StaleCalibrationWarning(UserWarning):
    """The LUT's calibration was fitted before some of the space's entries changed.

    It still applies (it is usually close), but the sums it corrected are not today's; re-run
    ``profiler-agent validate --server URL --calibrate`` to fit it again.
    """
