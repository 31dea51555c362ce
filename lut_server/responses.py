"""A JSON response that can never fail to render (ASCII-escaped, NaN mapped to null)."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
        except ValueError:
            return json.dumps(_finite(content), ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def validation_error(_request: Request, exc: RequestValidationError) -> SafeJSONResponse:
    """422 listing each problem as location + message (the offending input is not echoed back)."""
    detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]
    body: Any = {"detail": detail} if detail else {"detail": "invalid request"}
    return SafeJSONResponse(_finite(body), status_code=422)
