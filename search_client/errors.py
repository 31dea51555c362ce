"""Errors the search client raises. Each says what is wrong and what to do about it."""

from __future__ import annotations

from typing import List, Optional, Sequence

from lutcore.errors import LutError


class ClientError(LutError):
    """Base class of the search client's errors."""


class ServerError(ClientError):
    """The server answered with an error status (4xx/5xx) or a body that is not what the contract says."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        self.status = status
        super().__init__(message)


class TransportError(ClientError):
    """The server could not be reached (after every retry)."""


def measure_hint(space: str, resolution: Optional[str], target: str, server: Optional[str]) -> str:
    """The exact commands that get a space's missing ops measured on a target."""
    url = server or "http://LUT_SERVER:8000"
    res = f" --resolution {resolution}" if resolution else ""
    dev, backend = target.split("/")[0], (target.split("/") + ["", ""])[1]
    return (
        "to get them measured:\n"
        f"  1. enqueue the space's ops for the target:\n"
        f"       lut server register-space {space}{res} --target {target} --server {url}\n"
        f"     (or from Python: client.cost_matrix(..., missing=\"wait\"), which also waits for them)\n"
        f"  2. on a board of that target, with an agent token from `lut token create --device NAME`:\n"
        f"       profiler-agent --device NAME --server {url} --token TOKEN --backend {backend or 'BACKEND'}"
        f" --exit-when-idle\n"
        f"     (NAME: the board, e.g. {dev}-01)"
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
