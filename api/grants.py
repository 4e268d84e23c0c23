"""`/v1/grants`: hand grants through the API (common/entitlements/manual_grants.py), as `rolesync grants` does them.

`PUT /v1/grants/{grant_id}` (scope `grants:write`) with `{"user_id": "kp_…", "roles": ["role_client"],
"reason": "partner", "org_code": "org_…"?, "until": epoch s?}` (api/contract.py `HandGrantBody`) stores or
replaces it, recorded in the audit trail as made by the key's label; `DELETE /v1/grants/{grant_id}?reason=…`
ends it. `GET /v1/grants[?user_id=&expiring_within=7d]` and `GET /v1/grants/{grant_id}` (scope `users`)
read them. A body off its schema is a 400 saying what is wrong; a user the service does not know (or
knows Kinde deleted) is a 404 `user_not_found`, and one it has not seen in the grant's org a 409
`not_a_member` (common/entitlements/grant_recipients.py: the API never calls Kinde); a role plans.toml does not
manage or an `until` not in the future is a 409; in every case nothing is stored. The store is the worker's
synchronous one, run off the event loop; a grant change is rare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import contract, views
from api.bodies import BadBodyError, json_body
from api.contract import read_as, to_body
from api.reader import Reader
from common.entitlements.grant_recipients import UnknownRecipientError
from common.entitlements.hand_grant_changes import HandGrantChanges, UnknownGrantError
from common.entitlements.manual_grants import BadGrantError, HandGrant, HandGrantStore
from common.errors import RetryableError
from common.infra.audit_trail import Actor, NoReasonError
from common.infra.durations import BadDurationError, parse_duration

MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class GrantDesk:
    """What the routes need: the store to read, and the changes (None when plans.toml could not be read)."""

    store: HandGrantStore
    changes: HandGrantChanges | None


def _bad(message: str) -> Response:
    return JSONResponse(views.error("bad_request", message), status_code=400)


class NoDeskError(RetryableError):
    reason = "no_grant_store"


def _desk(request: Request) -> GrantDesk:
    """The app's hand grants; none when the app was built on injected stores only (tests): a 503."""
    desk: GrantDesk | None = request.app.state.grants
    if desk is None:
        raise NoDeskError("hand grants are not served by this app")
    return desk


async def put_grant(request: Request, reader: Reader) -> Response:
    changes = _desk(request).changes
    if changes is None:
        return JSONResponse(views.error("unavailable", "plans.toml could not be read: no managed roles to grant"),
                            status_code=503)  # fmt: skip
    try:
        body = read_as(contract.HandGrantBody, await json_body(request, MAX_BODY_BYTES))
        grant = _grant_of(request.path_params["grant_id"], body, request.state.caller_label)
        old = await run_in_threadpool(changes.add, grant)
    except BadBodyError as exc:
        return _bad(str(exc))
    except UnknownRecipientError as exc:
        status = 404 if exc.refusal == "user_not_found" else 409
        return JSONResponse(views.error(exc.refusal, str(exc)), status_code=status)
    except (BadGrantError, NoReasonError) as exc:  # the body's shape is right; plans.toml or the clock refuse it
        return JSONResponse(views.error("grant_refused", str(exc)), status_code=409)
    return JSONResponse(to_body(contract.GrantStored(_answer(grant), old is not None)))


def _answer(grant: HandGrant) -> contract.HandGrant:
    return msgspec.convert(grant.to_dict(), contract.HandGrant)


def _grant_of(grant_id: str, body: contract.HandGrantBody, by: str) -> HandGrant:
    return HandGrant(grant_id, body.user_id, body.org_code, tuple(dict.fromkeys(body.roles)),
                     body.reason.strip(contract.BLANKS), by, time.time(), body.until)  # fmt: skip


async def delete_grant(request: Request, reader: Reader) -> Response:
    changes, grant_id = _desk(request).changes, request.path_params["grant_id"]
    if changes is None:
        return JSONResponse(views.error("unavailable", "plans.toml could not be read"), status_code=503)
    try:
        actor = Actor.of(request.state.caller_label, request.query_params.get("reason"))
        removed = await run_in_threadpool(changes.remove, grant_id, actor)
    except NoReasonError:
        return _bad("say why with ?reason=…: it goes to the audit trail")
    except UnknownGrantError as exc:
        return JSONResponse(views.error("grant_not_found", str(exc)), status_code=404)
    return JSONResponse(to_body(contract.GrantRemoved(_answer(removed))))


async def get_grant(request: Request, reader: Reader) -> Response:
    grant_id = request.path_params["grant_id"]
    found = await run_in_threadpool(_desk(request).store.get, grant_id)
    if found is None:
        return JSONResponse(views.error("grant_not_found", f"no hand grant {grant_id}"), status_code=404)
    return JSONResponse(to_body(contract.GrantFound(_answer(found))))


async def list_grants(request: Request, reader: Reader) -> Response:
    store, user_id = _desk(request).store, request.query_params.get("user_id") or ""
    try:
        within = request.query_params.get("expiring_within")
        before = time.time() + parse_duration(within) if within is not None else None
    except BadDurationError as exc:
        return _bad(str(exc))
    found = await run_in_threadpool(store.of_user, user_id) if user_id else await run_in_threadpool(store.listed)
    kept = [g for g in found if before is None or (g.until is not None and g.until <= before)]
    return JSONResponse(to_body(contract.GrantList([_answer(g) for g in kept])))
