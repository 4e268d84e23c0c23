"""The tenant's public endpoints: JWKS (both documented paths) and the M2M client-credentials token.

Token errors use the OAuth 2.0 format (`{"error","error_description"}`), as an OAuth server
does; they never echo the secret that was sent.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.runtime import Sandbox, sandbox_of

log = structlog.get_logger("sandbox.oauth")


async def jwks(request: Request) -> Response:
    return JSONResponse(sandbox_of(request).keys.jwks())


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _check(sandbox: Sandbox, form: dict[str, str], audiences: list[str]) -> JSONResponse | None:
    if form.get("grant_type") != "client_credentials":
        return oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported")
    same_id = hmac.compare_digest(form.get("client_id", ""), sandbox.config.client_id)
    same_secret = hmac.compare_digest(form.get("client_secret", ""), sandbox.config.client_secret)
    if not (same_id and same_secret):
        return oauth_error(401, "invalid_client", "Client authentication failed")
    if form.get("audience") not in audiences:
        return oauth_error(400, "invalid_request", f"audience must be {audiences[0]}")
    return None


def audiences_of(request: Request, sandbox: Sandbox) -> list[str]:
    """The configured domain's `/api`, or the one the caller reached us at (a 0.0.0.0 bind has no one name)."""
    return [sandbox.config.audience, f"{str(request.base_url).rstrip('/')}/api"]


async def token(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return oauth_error(400, "invalid_request", "Send the token request form-encoded")
    # parse_qsl, not request.form(): Starlette's form parser needs python-multipart, a dependency
    # that would buy nothing for one url-encoded body.
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    refusal = _check(sandbox, form, audiences_of(request, sandbox))
    if refusal is not None:
        log.info("token_refused", client_id=form.get("client_id", ""), status=refusal.status_code)
        return refusal
    log.info("token_issued", client_id=form["client_id"])
    return JSONResponse(sandbox.tokens.issue(form["client_id"], form.get("scope", ""), form["audience"]))


routes = [
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/.well-known/jwks", jwks, methods=["GET"]),
    Route("/oauth2/token", token, methods=["POST"]),
]
