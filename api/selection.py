"""What a plan-selection request asks, read from the workflow's context (the contract in the README).

The body is the `user:plan_selection` event's `context` object, or the whole event with it under
`context` (docs/kinde-facts.md, Workflows), as declared in api/contract.py: `{"billing":
{"requestedPlanCode", "currentPlanCode"?}, "user": {"id"}, "organization"?: {"code"?}}`, Kinde's other
fields allowed. `organization` may be missing: the user's default placement is meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.bodies import BadBodyError
from api.contract import BLANKS, SelectionContext, SelectionEvent, read_as
from common.errors import PermanentError

MAX_BODY_BYTES = 64 * 1024
MAX_CODE_CHARS = 200


class BadSelectionError(PermanentError):
    reason = "bad_selection"


@dataclass(frozen=True)
class Selection:
    user_id: str
    org_code: str | None
    current_plan: str | None
    requested_plan: str


def selection_of(body: Any) -> Selection:
    """The selection the body asks for: its `context` if that is one, else the body itself (schema: anyOf)."""
    if isinstance(body, dict) and isinstance(body.get("context"), dict):
        try:
            return _selection(read_as(SelectionEvent, body).context)
        except BadBodyError:
            pass  # a `context` that is no workflow context: the body itself may be one
    try:
        return _selection(read_as(SelectionContext, body))
    except BadBodyError as exc:
        raise BadSelectionError(f"the body must be the workflow's context object (or the event with it as "
                                f"'context'): {exc}") from None  # fmt: skip


def _selection(context: SelectionContext) -> Selection:
    org = context.organization.code if context.organization else None
    requested, user_id = _code(context.billing.requestedPlanCode), _code(context.user.id)  # never blank: the pattern
    return Selection(user_id, _optional(org), _optional(context.billing.currentPlanCode), requested)


def _code(raw: str) -> str:
    return raw.strip(BLANKS)[:MAX_CODE_CHARS]


def _optional(raw: str | None) -> str | None:
    return _code(raw) or None if raw else None
