"""`/v1/grants`: hand grants through the API (common/manual_grants.py), as `rolesync grants` does them.

`PUT /v1/grants/{grant_id}` (scope `grants:write`) with `{"user_id": "kp_…", "roles": ["role_client"],
"reason": "partner", "org_code": "org_…"?, "until": "2027-03-01" | epoch s?}` stores or replaces it,
recorded in the audit trail as made by the key's label; `DELETE /v1/grants/{grant_id}?reason=…` ends
it. `GET /v1/grants[?user_id=&expiring_within=7d]` and `GET /v1/grants/{grant_id}` (scope `users`)
read them. Bad input is a 400 saying what is wrong, and nothing is stored. The store is the worker's
synchronous one, run off the event loop; a grant change is rare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import views
from api.bodies import BadBodyError, json_body
from api.reader import Reader
from common.audit_trail import Actor, NoReasonError
from common.durations import BadDurationError, parse_duration
from common.errors import RetryableError
from common.hand_grant_changes import HandGrantChanges, UnknownGrantError
from common.manual_grants import BadGrantError, HandGrant, HandGrantStore, parse_until

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
        grant = _grant_of(request.path_params["grant_id"], await json_body(request, MAX_BODY_BYTES),
                          request.state.caller_label)  # fmt: skip
        old = await run_in_threadpool(changes.add, grant)
    except (BadBodyError, BadGrantError, NoReasonError) as exc:
        return _bad(str(exc))
    return JSONResponse({"grant": grant.to_dict(), "replaced": old is not None})


def _grant_of(grant_id: str, body: Any, by: str) -> HandGrant:
    if not isinstance(body, dict):
        raise BadGrantError("the body must be a JSON object with user_id, roles and reason")
    roles, until = body.get("roles"), body.get("until")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise BadGrantError("roles must be a list of role keys")
    fields = (body.get("user_id"), body.get("org_code") or "", body.get("reason"))
    if not all(isinstance(f, str) for f in fields):
        raise BadGrantError("user_id and reason must be strings (org_code too, when given)")
    user_id, org_code, reason = (str(f) for f in fields)
    return HandGrant(grant_id, user_id, org_code, tuple(dict.fromkeys(roles)), reason.strip(), by, time.time(),
                     _until(until))  # fmt: skip


def _until(until: Any) -> float | None:
    if until is None:
        return None
    if isinstance(until, bool) or not isinstance(until, int | float | str):
        raise BadGrantError("until must be a date (2027-03-01), an ISO date-time or epoch seconds")
    return parse_until(until) if isinstance(until, str) else float(until)


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
    return JSONResponse({"removed": removed.to_dict()})


async def get_grant(request: Request, reader: Reader) -> Response:
    grant_id = request.path_params["grant_id"]
    found = await run_in_threadpool(_desk(request).store.get, grant_id)
    if found is None:
        return JSONResponse(views.error("grant_not_found", f"no hand grant {grant_id}"), status_code=404)
    return JSONResponse({"grant": found.to_dict()})


async def list_grants(request: Request, reader: Reader) -> Response:
    store, user_id = _desk(request).store, request.query_params.get("user_id") or ""
    try:
        within = request.query_params.get("expiring_within")
        before = time.time() + parse_duration(within) if within else None
    except BadDurationError as exc:
        return _bad(str(exc))
    found = await run_in_threadpool(store.of_user, user_id) if user_id else await run_in_threadpool(store.listed)
    kept = [g for g in found if before is None or (g.until is not None and g.until <= before)]
    return JSONResponse({"grants": [g.to_dict() for g in kept]})
