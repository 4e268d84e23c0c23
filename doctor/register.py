"""`rolesync kinde register-webhook`: make Kinde send exactly our event types to our endpoint.

Create when no webhook points at the URL, PATCH when one does with other event types, and do
nothing when it already matches, so a second run changes nothing and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from common.webhooks.events import SUBSCRIBED_EVENTS
from doctor.webhooks import Webhook, WebhookRegistry, create_body, pointing_at, update_body


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    NONE = "none"


@dataclass(frozen=True)
class Registration:
    action: Action
    endpoint: str
    event_types: tuple[str, ...]
    webhook_id: str = ""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def plan_registration(webhooks: list[Webhook], url: str) -> Registration:
    wanted = SUBSCRIBED_EVENTS
    existing = pointing_at(webhooks, url)
    if existing is None:
        return Registration(Action.CREATE, url, wanted, added=wanted)
    added = tuple(t for t in wanted if t not in existing.event_types)
    removed = tuple(sorted(existing.event_types - set(wanted)))
    action = Action.UPDATE if added or removed else Action.NONE
    return Registration(action, existing.endpoint, wanted, existing.id, added, removed)


def apply(registry: WebhookRegistry, plan: Registration) -> Registration:
    """Send the planned change; returns the plan with the id Kinde gave a new webhook."""
    if plan.action is Action.CREATE:
        return replace(plan, webhook_id=registry.create(plan.endpoint, plan.event_types))
    if plan.action is Action.UPDATE:
        registry.update(plan.webhook_id, plan.event_types)
    return plan


_DONE = {Action.CREATE: "created", Action.UPDATE: "updated"}
_PLANNED = {Action.CREATE: "would create", Action.UPDATE: "would update"}


def describe(plan: Registration, *, dry_run: bool) -> str:
    if plan.action is Action.NONE:
        count = len(plan.event_types)
        return (
            f"webhook {plan.webhook_id} → {plan.endpoint} already has exactly our {count} event types; nothing changed"
        )
    verb = (_PLANNED if dry_run else _DONE)[plan.action]
    lines = [f"{verb} webhook {plan.webhook_id or '(new)'} → {plan.endpoint}"]
    if plan.added:
        lines.append(f"  adding event types: {', '.join(plan.added)}")
    if plan.removed:
        lines.append(f"  removing event types: {', '.join(plan.removed)}")
    return "\n".join(lines)


def request_of(plan: Registration) -> tuple[str, dict[str, Any]] | None:
    """The call the plan makes, as `--dry-run` shows it: method and path, and the JSON body."""
    if plan.action is Action.CREATE:
        return "POST /api/v1/webhooks", create_body(plan.endpoint, plan.event_types)
    if plan.action is Action.UPDATE:
        return f"PATCH /api/v1/webhooks/{plan.webhook_id}", update_body(plan.event_types)
    return None


def register(registry: WebhookRegistry, url: str, *, dry_run: bool) -> str:
    """Plan against what Kinde holds now, send it unless `dry_run`, and say what happened."""
    plan = plan_registration(registry.list(), url)
    if dry_run:
        call = request_of(plan)
        shown = f"\n{call[0]}\n{json.dumps(call[1], indent=2)}" if call else ""
        return describe(plan, dry_run=True) + shown
    return describe(apply(registry, plan), dry_run=False)
