"""The plan-selection hook: the sandbox runs the tenant's `user:plan_selection` workflow before a plan change.

Kinde runs that workflow before it applies a plan change made in the self-serve portal or through the
Management API, and not when a plan is assigned automatically at sign-up (docs/kinde-facts.md). The
sandbox stands in for the workflow rolesync ships (kinde/): it POSTs the event's context to the
configured URL with the workflow secret and refuses the change when the answer says so.

Failure policy, as the shipped workflow's default: a hook that cannot be reached, answers late (past
`timeout_s`), answers anything but 200, or sends no decision lets the change through, and is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from sandbox.problems import ApiProblem
from sandbox.tenant import Tenant

log = structlog.get_logger("sandbox.plan_hook")

SECRET_HEADER = "x-rolesync-workflow-secret"  # noqa: S105 - a header name, not a secret
DENIED_STATUS = 409  # our choice: Kinde does not publish the status of a change its workflow refused


@dataclass(frozen=True)
class PlanSelectionHook:
    url: str
    secret: str
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Verdict:
    allow: bool
    message: str = ""
    reasons: tuple[str, ...] = ()


ALLOW = Verdict(allow=True)


def selection_context(tenant: Tenant, customer_id: str, plan_code: str) -> dict[str, Any] | None:
    """The workflow event's `context` (billing, user, organization), or None when Kinde runs no workflow:
    a customer without an active plan is getting its first one, which Kinde assigns without asking."""
    active = tenant.active_agreements(customer_id)
    if not active:
        return None
    user_id, org_code = _actor(tenant, customer_id)
    return {
        "billing": {"currentPlanCode": active[-1].plan_code, "requestedPlanCode": plan_code},
        "user": {"id": user_id},
        "organization": {"code": org_code},
    }


def _actor(tenant: Tenant, customer_id: str) -> tuple[str, str]:
    """Who selects the plan: a user customer's owner in their first org; for an org customer, its first member."""
    customer = tenant.customer(customer_id)
    if customer.owner_kind == "user":
        user = tenant.users.get(customer.owner_id)
        org = user.org_codes[0] if user and user.org_codes else tenant.default_org().code
        return customer.owner_id, org
    members = [u.id for u in tenant.users.values() if customer.owner_id in u.org_codes]
    return (members[0] if members else ""), customer.owner_id


async def ask(hook: PlanSelectionHook, context: dict[str, Any]) -> Verdict:
    try:
        async with httpx.AsyncClient(timeout=hook.timeout_s) as http:
            response = await http.post(hook.url, json=context, headers={SECRET_HEADER: hook.secret})
    except httpx.HTTPError as exc:
        log.warning("plan_selection_hook_failed", why=type(exc).__name__, outcome="allowed")
        return ALLOW
    verdict = _verdict_of(response)
    if verdict is None:
        log.warning("plan_selection_hook_failed", why=f"status {response.status_code}", outcome="allowed")
        return ALLOW
    return verdict


def _verdict_of(response: httpx.Response) -> Verdict | None:
    try:
        answer = response.json() if response.status_code == 200 else None
    except ValueError:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("allow"), bool):
        return None
    reasons = answer.get("reasons")
    reasons = tuple(r for r in reasons if isinstance(r, str)) if isinstance(reasons, list) else ()
    message = answer.get("message") if isinstance(answer.get("message"), str) else ""
    return Verdict(answer["allow"], str(message), reasons)


def refusal(verdict: Verdict) -> ApiProblem:
    message = verdict.message or "The plan change was refused by the plan selection workflow"
    return ApiProblem(DENIED_STATUS, "PLAN_SELECTION_DENIED", message, details={"reasons": list(verdict.reasons)})


async def check(hook: PlanSelectionHook | None, tenant: Tenant, customer_id: str, plan_code: str) -> None:
    """Raise Kinde-style 409 PLAN_SELECTION_DENIED when the hook refuses; return to apply the change."""
    context = selection_context(tenant, customer_id, plan_code) if hook else None
    if hook is None or context is None:
        return
    verdict = await ask(hook, context)
    log.info("plan_selection_hook_answered", customer_id=customer_id, plan_code=plan_code, allow=verdict.allow)
    if not verdict.allow:
        raise refusal(verdict)
