"""What a plan-selection request asks, read from the workflow's context (pure; the contract in the README).

The body is the `user:plan_selection` event's `context` object, or the whole event with it under
`context`: `{"billing": {"currentPlanCode", "requestedPlanCode"}, "user": {"id"}, "organization":
{"code"}}` (docs/kinde-facts.md, Workflows). `organization` may be missing: the user's default
placement is meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import PermanentError

MAX_BODY_BYTES = 64 * 1024


class BadSelectionError(PermanentError):
    reason = "bad_selection"


@dataclass(frozen=True)
class Selection:
    user_id: str
    org_code: str | None
    current_plan: str | None
    requested_plan: str


def selection_of(body: Any) -> Selection:
    context = body.get("context") if isinstance(body, dict) and isinstance(body.get("context"), dict) else body
    if not isinstance(context, dict):
        raise BadSelectionError("the body must be the workflow's context object (or the event with it as 'context')")
    billing, user = _object(context, "billing"), _object(context, "user")
    requested, user_id = _text(billing.get("requestedPlanCode")), _text(user.get("id"))
    if requested is None or user_id is None:
        raise BadSelectionError("the context needs billing.requestedPlanCode and user.id as non-empty strings")
    org = context.get("organization")
    org_code = _text(org.get("code")) if isinstance(org, dict) else None
    return Selection(user_id, org_code, _text(billing.get("currentPlanCode")), requested)


def _object(context: dict[str, Any], name: str) -> dict[str, Any]:
    found = context.get(name)
    if not isinstance(found, dict):
        raise BadSelectionError(f"the context's '{name}' must be an object")
    return found


def _text(raw: Any) -> str | None:
    return raw.strip()[:200] if isinstance(raw, str) and raw.strip() else None
