"""A console form's fields: a small urlencoded body, read with the standard library's parser."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from common.errors import PermanentError

MAX_BODY = 16 * 1024  # the largest console form (a reason, ids, filters) is well under this


class BadFormError(PermanentError):
    """A body that is not a console form: too large, or not urlencoded."""

    reason = "bad_form"


async def fields(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadFormError("a console action is a form post (application/x-www-form-urlencoded)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadFormError(f"a console form is at most {MAX_BODY} bytes")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        raise BadFormError("the form is not valid urlencoded UTF-8") from None
