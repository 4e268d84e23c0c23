"""Request bodies read as JSON with a size cap, so a hostile body is a 400, never a 500 or a memory spike."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from common.errors import PermanentError


class BadBodyError(PermanentError):
    reason = "bad_body"


async def json_body(request: Request, limit: int) -> Any:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise BadBodyError(f"the body is larger than {limit} bytes")
    try:
        return json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested deeper than the interpreter's limit
        raise BadBodyError("the body is not JSON") from None
