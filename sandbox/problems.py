"""Kinde-format API errors: raised anywhere in a handler, answered as `{"errors":[{code,message}]}`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from common.errors import PermanentError


class ApiProblem(PermanentError):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, reason=code)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or {}  # extra fields of the error entry, e.g. a refused plan change's reasons


def not_found(code: str, what: str) -> ApiProblem:
    return ApiProblem(404, code, f"{what} not found")


def bad_request(code: str, message: str) -> ApiProblem:
    return ApiProblem(400, code, message)


def error_body(code: str, message: str, **details: Any) -> dict[str, list[dict[str, Any]]]:
    return {"errors": [{"code": code, "message": message, **details}]}


async def answer_problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return JSONResponse(error_body(exc.code, exc.message, **exc.details), status_code=exc.status, headers=exc.headers)
