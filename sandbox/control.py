"""The control and inspection API under `/_sandbox/` (never under `/api/v1/`): no token needed.

Tests, the demo and users' own integration suites drive the tenant through it: create users and
orgs, change plans, fire or sign arbitrary events, tune webhook delivery and read every log.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import events, plan_hook, snapshot
from sandbox.delivery import WebhookSettings
from sandbox.faults import FaultRule
from sandbox.management import json_body
from sandbox.problems import bad_request
from sandbox.runtime import sandbox_of

WEBHOOK_FIELDS = {
    "url": str,
    "variant": str,
    "shuffle": bool,
    "duplicate_rate": float,
    "drop_rate": float,
    "delay_ms": int,
    "paused": bool,
    "lose_rate": float,
}


MAX_BULK = 1_000_000


def done(**fields: Any) -> JSONResponse:
    return JSONResponse({"ok": True, **fields})


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_request("INVALID_FIELD", f"{name} must be true or false")
    return value


def _text(body: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise bad_request("INVALID_FIELD", f"{name} must be a non-empty string")
    return value


async def health(_: Request) -> Response:
    return done()


async def reset(request: Request) -> Response:
    sandbox_of(request).reset()
    return done()


async def create_user(request: Request) -> Response:
    sandbox, body = sandbox_of(request), await json_body(request)
    user = sandbox.tenant.create_user(
        _text(body, "email", optional=True),
        _text(body, "org_code", optional=True),
        with_customer=_flag(body, "with_customer", True),
    )
    if _flag(body, "send_webhook", True):
        sandbox.announce([events.user_created(user)])
    return JSONResponse({"id": user.id, "customer_id": user.customer_id, "org_code": user.org_codes[0]})


async def create_org(request: Request) -> Response:
    sandbox, body = sandbox_of(request), await json_body(request)
    org = sandbox.tenant.create_org(str(_text(body, "name")), with_customer=_flag(body, "with_customer", True))
    if _flag(body, "send_webhook", True):
        sandbox.announce([events.organization_created(org)])
    return JSONResponse({"code": org.code, "customer_id": org.customer_id})


async def delete_org(request: Request) -> Response:
    sandbox = sandbox_of(request)
    org = sandbox.tenant.delete_org(request.path_params["org_code"])
    sandbox.announce([events.organization_deleted(org)])
    return done()


async def membership(request: Request) -> Response:
    """Add or remove a member; `?send_webhook=true` also sends `user.updated` listing the user's orgs."""
    sandbox, params = sandbox_of(request), request.path_params
    if request.method == "POST":
        sandbox.tenant.add_member(params["user_id"], params["org_code"])
    else:
        sandbox.tenant.remove_member(params["user_id"], params["org_code"])
    if request.query_params.get("send_webhook") == "true":
        sandbox.announce([events.user_updated(sandbox.tenant.user(params["user_id"]))])
    return done()


async def delete_user(request: Request) -> Response:
    sandbox = sandbox_of(request)
    user = sandbox.tenant.delete_user(request.path_params["user_id"])
    sandbox.announce([events.user_deleted(user)])
    return done()


async def change_plan(request: Request) -> Response:
    """Runs the plan-selection hook first, as Kinde runs its workflow: a refusal answers 409, changes nothing."""
    sandbox, body = sandbox_of(request), await json_body(request)
    customer_id, plan_code = request.path_params["customer_id"], str(_text(body, "plan_code"))
    await plan_hook.check(sandbox.plan_hook, sandbox.tenant, customer_id, plan_code)
    change = sandbox.tenant.change_plan(customer_id, plan_code)
    sandbox.announce(events.plan_change_events(change, sandbox.picker))
    assert change.created is not None
    return JSONResponse({"agreement_id": change.created.id})


async def cancel_plan(request: Request) -> Response:
    sandbox = sandbox_of(request)
    change = sandbox.tenant.cancel(request.path_params["customer_id"])
    sandbox.announce(events.plan_change_events(change, sandbox.picker))
    return done(cancelled=[a.id for a in change.cancelled])


async def payment(request: Request) -> Response:
    """Body `{"outcome": "failed" | "succeeded"}`: the payment webhook only; agreements stay as they are."""
    sandbox, body = sandbox_of(request), await json_body(request)
    outcome = str(_text(body, "outcome"))
    if outcome not in events.PAYMENT_EVENTS:
        raise bad_request("INVALID_FIELD", f"outcome must be one of {', '.join(events.PAYMENT_EVENTS)}")
    customer_id = request.path_params["customer_id"]
    active = sandbox.tenant.active_agreements(customer_id)
    plan, agreement = (active[-1].plan_code, active[-1].id) if active else ("", "")
    event = events.payment_event(sandbox.tenant.customer(customer_id), outcome, plan, agreement, sandbox.picker)
    return JSONResponse(sandbox.announce([event])[0])


async def user_roles(request: Request) -> Response:
    tenant = sandbox_of(request).tenant
    org = request.query_params.get("org_code") or tenant.default_org().code
    return JSONResponse({"roles": sorted(r.key for r in tenant.roles_of(org, request.path_params["user_id"]))})


async def grant_role(request: Request) -> Response:
    tenant, body = sandbox_of(request).tenant, await json_body(request)
    org = _text(body, "org_code", optional=True) or tenant.default_org().code
    role = tenant.role_by_key(str(_text(body, "role_key")))
    tenant.grant(org, request.path_params["user_id"], role.id)
    return done()


async def calls(request: Request) -> Response:
    return JSONResponse({"calls": sandbox_of(request).calls})


async def token_requests(request: Request) -> Response:
    return JSONResponse({"token_requests": sandbox_of(request).tokens.issued})


async def issued_tokens(request: Request) -> Response:
    return JSONResponse({"tokens": sandbox_of(request).tokens.issued_tokens})


async def deliveries(request: Request) -> Response:
    deliverer = sandbox_of(request).deliverer
    return JSONResponse({"deliveries": deliverer.attempts, "pending": deliverer.pending, "lost": deliverer.lost})


async def send_event(request: Request) -> Response:
    sandbox, body = sandbox_of(request), await json_body(request)
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise bad_request("INVALID_FIELD", "data must be an object")
    sent = sandbox.send(
        str(_text(body, "type")),
        data,
        event_id=_text(body, "event_id", optional=True),
        timestamp=_text(body, "timestamp", optional=True),
    )
    return JSONResponse(sent)


async def sign(request: Request) -> Response:
    sandbox, body = sandbox_of(request), await json_body(request)
    if isinstance(raw := body.get("payload"), str):
        return JSONResponse({"token": sandbox.keys.sign_raw(raw)})
    claims = body.get("claims")
    if not isinstance(claims, dict):
        raise bad_request("INVALID_FIELD", "claims must be an object")
    return JSONResponse({"token": sandbox.keys.sign(claims, kid=_text(body, "kid", optional=True))})


def _webhook_settings(current: WebhookSettings, body: dict[str, Any]) -> WebhookSettings:
    changes: dict[str, Any] = {}
    for name, value in body.items():
        kind = WEBHOOK_FIELDS.get(name)
        if kind is None:
            raise bad_request("INVALID_FIELD", f"unknown webhook setting {name!r}")
        if value is not None:
            changes[name] = _typed(name, value, kind)
    if changes.get("variant", "mix") not in events.VARIANT_CHOICES:
        raise bad_request("INVALID_FIELD", f"variant must be one of {', '.join(events.VARIANT_CHOICES)}")
    return replace(current, **changes)


def _typed(name: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise bad_request("INVALID_FIELD", f"{name} must be a {kind.__name__}")


async def set_webhooks(request: Request) -> Response:
    sandbox, body = sandbox_of(request), await json_body(request)
    settings = _webhook_settings(sandbox.deliverer.settings, body)
    sandbox.deliverer.apply(settings)
    sandbox.picker.setting = settings.variant
    return done()


async def set_faults(request: Request) -> Response:
    """Body `{"pattern": "*", "rule": {...FaultRule fields}}`; an empty rule removes the pattern."""
    sandbox, body = sandbox_of(request), await json_body(request)
    pattern, rule = str(_text(body, "pattern")), body.get("rule") or {}
    if not isinstance(rule, dict):
        raise bad_request("INVALID_FIELD", "rule must be an object")
    try:
        parsed = FaultRule.parse(rule)
    except ValueError as exc:
        raise bad_request("INVALID_FIELD", str(exc)) from None
    if rule:
        sandbox.faults.rules[pattern] = parsed
    else:
        sandbox.faults.rules.pop(pattern, None)
    return done(patterns=sorted(sandbox.faults.rules))


async def clear_faults(request: Request) -> Response:
    sandbox_of(request).faults.rules.clear()
    return done()


async def set_plan_selection_hook(request: Request) -> Response:
    """Body `{"url", "secret", "timeout_s"?}`: deploy the plan-selection workflow; DELETE removes it."""
    sandbox, body = sandbox_of(request), await json_body(request)
    url, secret = str(_text(body, "url")), str(_text(body, "secret"))
    if not url.startswith(("http://", "https://")):
        raise bad_request("INVALID_FIELD", "url must be an http(s) URL")
    timeout_s = body.get("timeout_s", 5.0)
    if not _number(timeout_s) or timeout_s == 0:
        raise bad_request("INVALID_FIELD", "timeout_s must be a number > 0")
    sandbox.plan_hook = plan_hook.PlanSelectionHook(url, secret, float(timeout_s))
    return done()


async def clear_plan_selection_hook(request: Request) -> Response:
    sandbox_of(request).plan_hook = None
    return done()


async def set_rate_limit(request: Request) -> Response:
    body = await json_body(request)
    rate, burst = body.get("rate", 0), body.get("burst", 1)
    if not _number(rate) or not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        raise bad_request("INVALID_FIELD", "rate must be a number >= 0 and burst a whole number >= 1")
    sandbox_of(request).faults.bucket.configure(float(rate), burst)
    return done()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


async def rotate_keys(request: Request) -> Response:
    body = await json_body(request)
    grace_s = body.get("grace_s", 0)
    if not _number(grace_s):
        raise bad_request("INVALID_FIELD", "grace_s must be a number >= 0")
    key = sandbox_of(request).keys.rotate(grace_s=float(grace_s))
    return done(kid=key.kid)


async def expire_tokens(request: Request) -> Response:
    sandbox_of(request).tokens.revoke_all()
    return done()


async def set_scopes(request: Request) -> Response:
    scopes = (await json_body(request)).get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise bad_request("INVALID_FIELD", "scopes must be a list of strings")
    sandbox_of(request).tokens.granted_scopes = tuple(scopes)
    return done()


async def set_switches(request: Request) -> Response:
    switches, body = sandbox_of(request).switches, await json_body(request)
    switches.users_billing_expand = _flag(body, "users_billing_expand", switches.users_billing_expand)
    switches.orgs_billing_expand = _flag(body, "orgs_billing_expand", switches.orgs_billing_expand)
    status = body.get("invalid_token_status", switches.invalid_token_status)
    if status not in (401, 403) or isinstance(status, bool):
        raise bad_request("INVALID_FIELD", "invalid_token_status must be 401 or 403")
    switches.invalid_token_status = int(status)
    return done()


async def bulk(request: Request) -> Response:
    """A big tenant in one call, no webhooks: `users` default-org users and `orgs` orgs, each with a customer;
    with `plan`, each customer already on that plan, and with `roles` (keys), each user holding them."""
    sandbox, body = sandbox_of(request), await json_body(request)
    users, orgs, plan, roles = body.get("users", 0), body.get("orgs", 0), body.get("plan"), body.get("roles", [])
    if not all(isinstance(n, int) and 0 <= n <= MAX_BULK for n in (users, orgs)):
        raise bad_request("INVALID_FIELD", f"users and orgs must be whole numbers from 0 to {MAX_BULK}")
    if not (plan is None or (isinstance(plan, str) and plan)) or not _texts(roles):
        raise bad_request("INVALID_FIELD", "plan must be a plan code and roles a list of role keys")
    sandbox.tenant.seed_many(users=users, orgs=orgs, plan=plan, roles=roles)
    return done(users=len(sandbox.tenant.users), orgs=len(sandbox.tenant.orgs))


def _texts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


async def define_plan(request: Request) -> Response:
    features = (await json_body(request)).get("features", {})
    if not isinstance(features, dict) or not all(isinstance(v, int) for v in features.values()):
        raise bad_request("INVALID_FIELD", "features must map feature codes to whole-number limits")
    sandbox_of(request).tenant.define_plan(request.path_params["plan_code"], features)
    return done()


async def assignments(request: Request) -> Response:
    tenant = sandbox_of(request).tenant
    rows = [
        {"org_code": org, "user_id": user, "roles": sorted(tenant.roles[r].key for r in held if r in tenant.roles)}
        for (org, user), held in tenant.assignments.items()
    ]
    return JSONResponse({"assignments": rows})


async def read_state(request: Request) -> Response:
    """The whole tenant as the snapshot file holds it: what a test's oracle reads, with no token needed."""
    return JSONResponse(snapshot.dump(sandbox_of(request).tenant))


async def save_snapshot(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if sandbox.config.snapshot_file is None:
        raise bad_request("NO_SNAPSHOT_FILE", "start the sandbox with --snapshot-file to save snapshots")
    sandbox.save_snapshot()
    return done(path=str(sandbox.config.snapshot_file))


routes = [
    Route("/_sandbox/health", health, methods=["GET"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/users", create_user, methods=["POST"]),
    Route("/_sandbox/users/{user_id}", delete_user, methods=["DELETE"]),
    Route("/_sandbox/users/{user_id}/roles", user_roles, methods=["GET"]),
    Route("/_sandbox/users/{user_id}/roles", grant_role, methods=["POST"]),
    Route("/_sandbox/orgs", create_org, methods=["POST"]),
    Route("/_sandbox/bulk", bulk, methods=["POST"]),
    Route("/_sandbox/orgs/{org_code}", delete_org, methods=["DELETE"]),
    Route("/_sandbox/orgs/{org_code}/users/{user_id}", membership, methods=["POST", "DELETE"]),
    Route("/_sandbox/customers/{customer_id}/plan", change_plan, methods=["POST"]),
    Route("/_sandbox/customers/{customer_id}/cancel", cancel_plan, methods=["POST"]),
    Route("/_sandbox/customers/{customer_id}/payment", payment, methods=["POST"]),
    Route("/_sandbox/calls", calls, methods=["GET"]),
    Route("/_sandbox/token-requests", token_requests, methods=["GET"]),
    Route("/_sandbox/tokens", issued_tokens, methods=["GET"]),
    Route("/_sandbox/deliveries", deliveries, methods=["GET"]),
    Route("/_sandbox/events", send_event, methods=["POST"]),
    Route("/_sandbox/sign", sign, methods=["POST"]),
    Route("/_sandbox/webhooks", set_webhooks, methods=["POST"]),
    Route("/_sandbox/faults", set_faults, methods=["POST"]),
    Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
    Route("/_sandbox/rate-limit", set_rate_limit, methods=["POST"]),
    Route("/_sandbox/plan_selection_hook", set_plan_selection_hook, methods=["POST"]),
    Route("/_sandbox/plan_selection_hook", clear_plan_selection_hook, methods=["DELETE"]),
    Route("/_sandbox/keys/rotate", rotate_keys, methods=["POST"]),
    Route("/_sandbox/tokens/expire", expire_tokens, methods=["POST"]),
    Route("/_sandbox/scopes", set_scopes, methods=["POST"]),
    Route("/_sandbox/switches", set_switches, methods=["POST"]),
    Route("/_sandbox/plans/{plan_code}", define_plan, methods=["POST"]),
    Route("/_sandbox/assignments", assignments, methods=["GET"]),
    Route("/_sandbox/snapshot", save_snapshot, methods=["POST"]),
    Route("/_sandbox/state", read_state, methods=["GET"]),
]
