"""The Management API subset under `/api/v1`, with Kinde's shapes, error codes and paging.

Every handler is wrapped by `requires(scope)`: no valid bearer token → 401 (or, with the switch
`invalid_token_status=403`, 403 INVALID_CREDENTIALS as Kinde's spec has it), a token without the
endpoint's scope → 403 naming the scope. All in Kinde's `{"errors":[{code,message}]}` format.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.infra.sandbox_marker import DELIVERS_TO
from sandbox import events, ids, plan_hook, shapes
from sandbox.clock import now_iso
from sandbox.model import Webhook
from sandbox.paging import cursor_page, token_page
from sandbox.problems import ApiProblem, bad_request
from sandbox.runtime import Sandbox, sandbox_of
from sandbox.tokens import TokenRejected

Handler = Callable[[Request, Sandbox], Awaitable[Response]]
USER_EXPANDS = frozenset({"organizations", "identities", "billing"})
ORG_EXPANDS = frozenset({"billing"})


def requires(scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            sandbox = sandbox_of(request)
            _authorize(sandbox, request.headers.get("authorization", ""), scope)
            return await handler(request, sandbox)

        return endpoint

    return decorate


def _authorize(sandbox: Sandbox, authorization: str, scope: str) -> None:
    try:
        scopes = sandbox.tokens.scopes_of(authorization)
    except TokenRejected as exc:
        raise _rejected(sandbox, str(exc)) from None
    if scope not in scopes:
        raise ApiProblem(403, "SCOPE_MISSING", f"The access token is missing the required scope: {scope}")


def _rejected(sandbox: Sandbox, why: str) -> ApiProblem:
    if sandbox.switches.invalid_token_status == 403:
        return ApiProblem(403, "INVALID_CREDENTIALS", "Invalid credentials used to access API")
    return ApiProblem(401, "UNAUTHORIZED", why, {"WWW-Authenticate": "Bearer"})


def expand_of(request: Request, allowed: frozenset[str]) -> set[str]:
    wanted = {part.strip() for part in request.query_params.get("expand", "").split(",") if part.strip()}
    if wanted - allowed:
        raise bad_request("INVALID_EXPAND_VALUES", f"Invalid expand values: {', '.join(sorted(wanted - allowed))}")
    return wanted


def required(request: Request, name: str, code: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise bad_request(code, f"{name} is required")
    return value


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise bad_request("INVALID_JSON", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("INVALID_JSON", "Request body must be a JSON object")
    return body


def ok(**fields: Any) -> JSONResponse:
    return JSONResponse({**shapes.OK, **fields})


@requires("read:roles")
async def list_roles(request: Request, sandbox: Sandbox) -> Response:
    roles = sorted(sandbox.tenant.roles.values(), key=lambda r: r.key)
    page, next_token = token_page(roles, request.query_params)
    return ok(roles=[shapes.role_json(r) for r in page], next_token=next_token)


@requires("read:organization_user_roles")
async def list_user_roles(request: Request, sandbox: Sandbox) -> Response:
    org, user = request.path_params["org_code"], request.path_params["user_id"]
    page, next_token = token_page(sandbox.tenant.roles_of(org, user), request.query_params)
    return ok(roles=[shapes.user_role_json(r) for r in page], next_token=next_token)


@requires("create:organization_user_roles")
async def add_user_role(request: Request, sandbox: Sandbox) -> Response:
    role_id = (await json_body(request)).get("role_id")
    if not isinstance(role_id, str) or not role_id:
        raise bad_request("ROLE_REQUIRED", "role_id is required")
    sandbox.tenant.grant(request.path_params["org_code"], request.path_params["user_id"], role_id)
    return ok()


@requires("delete:organization_user_roles")
async def remove_user_role(request: Request, sandbox: Sandbox) -> Response:
    params = request.path_params
    sandbox.tenant.revoke(params["org_code"], params["user_id"], params["role_id"])
    return ok()


@requires("read:users")
async def get_user(request: Request, sandbox: Sandbox) -> Response:
    expand = expand_of(request, USER_EXPANDS)
    user = sandbox.tenant.user(required(request, "id", "USER_ID_REQUIRED"))
    return JSONResponse(shapes.user_json(user, expand))


@requires("read:users")
async def list_users(request: Request, sandbox: Sandbox) -> Response:
    expand = expand_of(request, USER_EXPANDS if sandbox.switches.users_billing_expand else USER_EXPANDS - {"billing"})
    users = list(sandbox.tenant.users.values())
    if request.query_params.get("user_id"):
        users = [u for u in users if u.id == request.query_params["user_id"]]
    page, next_token = token_page(users, request.query_params)
    return ok(users=[shapes.users_item_json(u, expand) for u in page], next_token=next_token)


@requires("read:organizations")
async def list_orgs(request: Request, sandbox: Sandbox) -> Response:
    page, next_token = token_page(list(sandbox.tenant.orgs.values()), request.query_params)
    billing = sandbox.switches.orgs_billing_expand and "billing" in expand_of(request, ORG_EXPANDS)
    rows = [shapes.org_json(o) for o in page]
    for row, org in zip(rows, page, strict=True) if billing else ():
        row["billing"] = shapes.org_billing_json(org, sandbox.tenant)
    return ok(organizations=rows, next_token=next_token)


@requires("read:organizations")
async def get_org(request: Request, sandbox: Sandbox) -> Response:
    expand = expand_of(request, ORG_EXPANDS)
    code = request.query_params.get("code", "").strip()
    org = sandbox.tenant.org(code) if code else sandbox.tenant.default_org()
    body = shapes.org_json(org)
    if "billing" in expand:
        body["billing"] = shapes.org_billing_json(org, sandbox.tenant)
    return JSONResponse(body)


@requires("read:organization_users")
async def list_org_users(request: Request, sandbox: Sandbox) -> Response:
    org = request.path_params["org_code"]
    wanted = {k for k in request.query_params.get("roles", "").split(",") if k}
    rows = [(u, [r.key for r in sandbox.tenant.roles_of(org, u.id)]) for u in sandbox.tenant.members(org)]
    rows = [(u, keys) for u, keys in rows if not wanted or wanted & set(keys)]
    page, next_token = token_page(rows, request.query_params)
    return ok(organization_users=[shapes.org_user_json(u, keys) for u, keys in page], next_token=next_token)


@requires("read:billing_agreements")
async def list_agreements(request: Request, sandbox: Sandbox) -> Response:
    customer_id = required(request, "customer_id", "CUSTOMER_ID_REQUIRED")
    agreements = sandbox.tenant.agreements_of(customer_id)
    page, has_more = cursor_page(agreements, request.query_params, lambda a: a.id)
    plans = sandbox.tenant.plans
    return ok(has_more=has_more, agreements=[shapes.agreement_json(a, plans.get(a.plan_code, {})) for a in page])


@requires("create:billing_agreements")
async def create_agreement(request: Request, sandbox: Sandbox) -> Response:
    """Kinde's documented way to change plan: a new agreement; the customer's others are cancelled."""
    body = await json_body(request)
    customer_id, plan_code = body.get("customer_id"), body.get("plan_code")
    if not isinstance(customer_id, str) or not customer_id:
        raise bad_request("CUSTOMER_ID_REQUIRED", "customer_id is required")
    if not isinstance(plan_code, str) or not plan_code:
        raise bad_request("PLAN_CODE_REQUIRED", "plan_code is required")
    await plan_hook.check(sandbox.plan_hook, sandbox.tenant, customer_id, plan_code)
    change = sandbox.tenant.change_plan(customer_id, plan_code)
    sandbox.announce(events.plan_change_events(change, sandbox.picker))
    return ok()


@requires("read:billing_entitlements")
async def list_entitlements(request: Request, sandbox: Sandbox) -> Response:
    customer_id = required(request, "customer_id", "CUSTOMER_ID_REQUIRED")
    expand = expand_of(request, frozenset({"plans"}))
    active = sandbox.tenant.active_agreements(customer_id)
    rows = [(a, f, limit) for a in active for f, limit in sandbox.tenant.plans.get(a.plan_code, {}).items()]
    page, has_more = cursor_page(rows, request.query_params, lambda row: shapes.entitlement_id(row[0], row[1]))
    body: dict[str, Any] = {"has_more": has_more, "entitlements": [shapes.entitlement_json(*row) for row in page]}
    if "plans" in expand:
        body["plans"] = [{"code": a.plan_code, "subscribed_on": a.created_on} for a in active]
    return ok(**body)


@requires("read:webhooks")
async def list_webhooks(_: Request, sandbox: Sandbox) -> Response:
    webhooks = [shapes.webhook_json(w) for w in sandbox.tenant.webhooks.values()]
    return ok(webhooks=webhooks, **{DELIVERS_TO: sandbox.deliverer.settings.url})


def _webhook_fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, kind in (("endpoint", str), ("name", str), ("description", str), ("event_types", list)):
        if name in body and body[name] is not None:
            if not isinstance(body[name], kind) or (kind is list and not all(isinstance(t, str) for t in body[name])):
                raise bad_request("INVALID_FIELD", f"{name} has the wrong type")
            fields[name] = body[name]
        elif not partial and name in ("endpoint", "event_types", "name"):
            raise bad_request(f"{name.upper()}_REQUIRED", f"{name} is required")
    if "endpoint" in fields and not str(fields["endpoint"]).startswith(("http://", "https://")):
        raise bad_request("INVALID_ENDPOINT", "endpoint must be an http(s) URL")
    return fields


@requires("create:webhooks")
async def create_webhook(request: Request, sandbox: Sandbox) -> Response:
    fields = _webhook_fields(await json_body(request), partial=False)
    webhook = Webhook(id=ids.new_id("webhook"), created_on=now_iso(), **{"description": None, **fields})
    sandbox.tenant.webhooks[webhook.id] = webhook
    return ok(webhook={"id": webhook.id, "endpoint": webhook.endpoint})


@requires("update:webhooks")
async def update_webhook(request: Request, sandbox: Sandbox) -> Response:
    webhook = sandbox.tenant.webhook(request.path_params["webhook_id"])
    for name, value in _webhook_fields(await json_body(request), partial=True).items():
        setattr(webhook, name, value)
    return ok(webhook={"id": webhook.id})


@requires("delete:webhooks")
async def delete_webhook(request: Request, sandbox: Sandbox) -> Response:
    webhook = sandbox.tenant.webhook(request.path_params["webhook_id"])
    del sandbox.tenant.webhooks[webhook.id]
    return ok(webhook={"id": webhook.id})


ORG_USER_ROLES = "/api/v1/organizations/{org_code}/users/{user_id}/roles"

routes = [
    Route("/api/v1/roles", list_roles, methods=["GET"]),
    Route(ORG_USER_ROLES, list_user_roles, methods=["GET"]),
    Route(ORG_USER_ROLES, add_user_role, methods=["POST"]),
    Route(ORG_USER_ROLES + "/{role_id}", remove_user_role, methods=["DELETE"]),
    Route("/api/v1/user", get_user, methods=["GET"]),
    Route("/api/v1/users", list_users, methods=["GET"]),
    Route("/api/v1/organizations", list_orgs, methods=["GET"]),
    Route("/api/v1/organization", get_org, methods=["GET"]),
    Route("/api/v1/organizations/{org_code}/users", list_org_users, methods=["GET"]),
    Route("/api/v1/billing/agreements", list_agreements, methods=["GET"]),
    Route("/api/v1/billing/agreements", create_agreement, methods=["POST"]),
    Route("/api/v1/billing/entitlements", list_entitlements, methods=["GET"]),
    Route("/api/v1/webhooks", list_webhooks, methods=["GET"]),
    Route("/api/v1/webhooks", create_webhook, methods=["POST"]),
    Route("/api/v1/webhooks/{webhook_id}", update_webhook, methods=["PATCH"]),
    Route("/api/v1/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
]
