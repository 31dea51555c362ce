"""What a call to the LUT server can end in, as typed errors that carry the HTTP status and the
server's ``detail``, so a caller prints one line instead of a traceback.

Four outcomes, four classes, because callers act on them differently:

- ``Unavailable``: no usable answer (unreachable, timed out, or a transient status that outlasted
  every retry). Keep the work and try again later. ``ServerFault`` (a 5xx that is not retried,
  such as 500) is one too: the request may be fine and the server may be fixed.
- ``AuthError``: 401/403. Retrying cannot help; the token or the device name must change.
- ``Rejected``: any other 4xx. The request itself is wrong; retrying cannot help.
- ``BadResponse``: a success status whose body is not JSON (not a LUT server?).
"""

from __future__ import annotations

from typing import Any, Optional

from lutcore.errors import LutError


class RestError(LutError):
    """Base class; ``status`` is the HTTP status (None: no answer) and ``detail`` the server's reason."""

    def __init__(self, message: str, status: Optional[int] = None, detail: str = "", method: str = "",
                 url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.method = method
        self.url = url


class Unavailable(RestError):
    """No usable answer after every attempt; the request may be sent again later."""


class ServerFault(Unavailable):
    """A 5xx the policy does not retry (500: usually the same failure again, so not hammered)."""


class AuthError(RestError):
    """401/403: the token is missing, wrong, revoked, or may not do this."""


class Rejected(RestError):
    """Another 4xx: the request is wrong (422 validation, 404 unknown, 409 conflict, 413 too big)."""


class BadResponse(RestError):
    """A success status with a body that is not JSON."""


def detail_of(body: Any, text: str) -> str:
    """The server's reason, flattened to one line: FastAPI's ``detail`` (a string, or a list of
    ``{loc, msg}`` for validation errors), else the start of the body."""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if detail is None:
        return text.strip()[:300]
    if isinstance(detail, list):
        parts = []
        for err in detail:
            if isinstance(err, dict) and "msg" in err:
                loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
            else:
                parts.append(str(err))
        return "; ".join(parts)[:500]
    return str(detail)[:500]
