"""The customer and user pages: look-up, what is in force, the timeline, "why this role", and the actions.

Actions (link, unlink, mark paid, reconcile) are ops/actions.py's, as `rolesync customers link|unlink|paid`
and `rolesync reconcile --customer` run them; each asks first on a page of its own, and its timeline
entry names the key's label.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.entitlements.snapshots import RedisSnapshotStore, TargetSnapshot
from common.errors import ConfigError
from common.settings import Settings
from console.dead_letters import actor
from console.frame import form, problem, render
from console.parts import Parts
from console.session import Session
from console.why import Why, explain
from ops import actions, customers
from ops.audit import Actor
from ops.customers import USER_PREFIX, timeline
from worker.sweeps.reconcile import Verdict

KINDE = ("KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")
ACTIONS = ("link", "unlink", "paid", "reconcile")
RECONCILE_TIMEOUT_S = 60.0


async def lookup(request: Request, parts: Parts, session: Session) -> Response:
    wanted = request.query_params.get("q", "").strip()
    if not wanted:
        return render(request, "lookup.html", session, wanted="", orgs=[])
    if wanted.startswith(USER_PREFIX):
        return RedirectResponse(f"/console/users/{quote(wanted)}", status_code=303)
    if await run_in_threadpool(_known_customer, parts, wanted):
        return RedirectResponse(f"/console/customers/{quote(wanted)}", status_code=303)
    found = await run_in_threadpool(_of_org, parts, wanted)
    if not found:
        return problem(
            request, session, 404, f"Nothing is known about {wanted!r}: no customer, user or org by that id."
        )
    return render(request, "lookup.html", session, wanted=wanted, orgs=found)


def _known_customer(parts: Parts, customer_id: str) -> bool:
    stores = parts.stores
    return bool(stores.links.get(customer_id) or stores.grants.get(customer_id) or stores.states.get(customer_id)
                or stores.dead_letters.of_customer(customer_id))  # fmt: skip


def _of_org(parts: Parts, org_code: str) -> list[str]:
    links = parts.stores.links
    return sorted(set(links.customers_of_org(org_code)) | set(links.payers_of_org(org_code)))


async def customer(request: Request, parts: Parts, session: Session) -> Response:
    customer_id = request.path_params["customer_id"]
    found = await run_in_threadpool(_customer, parts, customer_id)
    if found is None:
        return problem(request, session, 404, f"Nothing is known about customer {customer_id}.")
    return render(request, "customer.html", session, **found)


def _customer(parts: Parts, customer_id: str) -> dict[str, Any] | None:
    stores = parts.stores
    link, grants = stores.links.get(customer_id), stores.grants.get(customer_id)
    state, letters = stores.states.get(customer_id), stores.dead_letters.of_customer(customer_id)
    entries = timeline(stores, customer_id)
    if not (link or grants or state or letters or entries):
        return None
    snaps = RedisSnapshotStore(stores.redis)
    targets = list(grants.targets) if grants else []
    snapshots = {t: _snapshot(snaps.of_user(t.user_id), t.org_code) for t in targets}
    return {"customer_id": customer_id, "link": link, "linked_to": customers.describe(link), "grants": grants,
            "state": state, "dead_letters": letters, "payment": stores.payments.standing(customer_id),
            "snapshots": snapshots, "timeline": entries}  # fmt: skip


def _snapshot(found: list[TargetSnapshot], org_code: str) -> TargetSnapshot | None:
    return next((s for s in found if s.target.org_code == org_code), None)


async def user(request: Request, parts: Parts, session: Session) -> Response:
    user_id = request.path_params["user_id"]
    org, role = request.query_params.get("org", "").strip(), request.query_params.get("role", "").strip()
    found = await run_in_threadpool(RedisSnapshotStore(parts.stores.redis).of_user, user_id)
    linked = await run_in_threadpool(parts.stores.links.customers_of_user, user_id)
    why = await run_in_threadpool(_why, parts, user_id, org, role, found) if org and role else None
    if not found and not linked:
        return problem(request, session, 404, f"Nothing is known about user {user_id}: no snapshot, no link.")
    return render(request, "user.html", session, user_id=user_id, snapshots=found, linked=linked, org=org, role=role,
                  why=why, managed=sorted(parts.plans.managed_roles) if parts.plans else [])  # fmt: skip


def _why(parts: Parts, user_id: str, org: str, role: str, found: list[TargetSnapshot]) -> Why:
    if parts.plans is None:
        raise ConfigError("plans.toml is unreadable in the API's process: see its log (plans_unreadable)")
    snapshot = _snapshot(found, org)
    ids = [s.customer_id for s in snapshot.sources] if snapshot else []
    links = {c: parts.stores.links.get(c) for c in ids}
    passes = {c: parts.stores.history.recent(c) for c in ids}
    return explain(user_id, org, role, snapshot, parts.plans, links, passes)


async def confirm(request: Request, parts: Parts, session: Session) -> Response:
    customer_id, action = request.path_params["customer_id"], request.path_params["action"]
    lines = await _preview(parts, customer_id, action, request.query_params)
    return render(
        request,
        "confirm.html",
        session,
        customer_id=customer_id,
        action=action,
        lines=lines,
        user_id=request.query_params.get("user_id", ""),
        org_code=request.query_params.get("org_code", ""),
    )


async def _preview(parts: Parts, customer_id: str, action: str, given: Any) -> list[str]:
    if action == "link":
        return await run_in_threadpool(_link_preview, parts, customer_id, given.get("user_id") or None,
                                       given.get("org_code") or None)  # fmt: skip
    said = {"unlink": f"Forget customer {customer_id}'s link; its roles stay until a pass converges its old place.",
            "paid": f"Record customer {customer_id}'s payment as gone through and queue a pass of it now.",
            "reconcile": f"Re-read customer {customer_id} from Kinde on the fleet and write the difference "
                         f"(rolesync reconcile --customer): up to {RECONCILE_TIMEOUT_S:.0f} s."}  # fmt: skip
    if action not in said:
        raise customers.BadIdError(f"no action {action!r} here: {', '.join(ACTIONS)}")
    return [said[action]]


def _link_preview(parts: Parts, customer_id: str, user_id: str | None, org_code: str | None) -> list[str]:
    from worker.entrypoints.bootstrap import build_kinde

    settings = need_kinde(parts, "linking looks the user up in Kinde", "rolesync customers link")
    with httpx.Client(timeout=settings.kinde_http_timeout_s) as http:
        kinde = build_kinde(settings, parts.stores.redis, http)
        return customers.preview_link(parts.stores, kinde, customer_id, user_id, org_code).lines()


def need_kinde(parts: Parts, why: str, instead: str) -> Settings:
    settings = parts.settings
    if not all((settings.kinde_domain, settings.kinde_client_id, settings.kinde_client_secret)):
        raise ConfigError(f"{why}: give the API {', '.join(KINDE)}, or use {instead}")
    return settings


async def act(request: Request, parts: Parts, session: Session) -> Response:
    customer_id, action, fields = request.path_params["customer_id"], request.path_params["action"], form(request)
    who = actor(session, fields.get("reason", ""))
    if action == "link":
        change = await run_in_threadpool(actions.link_customer, parts.stores, parts.broker(), who, customer_id,
                                         fields.get("user_id") or None, fields.get("org_code") or None)  # fmt: skip
        said = (
            f"Linked to {customers.describe(change.new)}; replayed {change.replayed} parked event(s); a pass is queued."
        )
    elif action == "unlink":
        removed = await run_in_threadpool(actions.unlink_customer, parts.stores, who, customer_id)
        said = f"Unlinked (was {customers.describe(removed)})."
    elif action == "paid":
        await run_in_threadpool(actions.mark_paid, parts.stores, parts.broker(), who, customer_id, time.time())
        said = "Recorded as paid; a pass is queued."
    elif action == "reconcile":
        said = await run_in_threadpool(_reconciled, parts, who, customer_id)
    else:
        raise customers.BadIdError(f"no action {action!r} here: {', '.join(ACTIONS)}")
    return render(request, "done.html", session, title=f"Customer {customer_id}", lines=[said],
                  back=f"/console/customers/{quote(customer_id)}")  # fmt: skip


def _reconciled(parts: Parts, who: Actor, customer_id: str) -> str:
    settings = need_kinde(parts, "a reconcile builds the worker's Kinde client", "rolesync reconcile --customer")
    verdicts: list[Verdict] = []
    summary = actions.reconcile(settings, who, [customer_id], timeout_s=RECONCILE_TIMEOUT_S, discover=True,
                                source="console", on_verdict=verdicts.append)  # fmt: skip
    changes = [f"+{key} ({user})" for v in verdicts for user, key in v.added]
    changes += [f"-{key} ({user})" for v in verdicts for user, key in v.removed]
    outcome = ", ".join(f"{v.outcome}" + (f": {v.error}" if v.error else "") for v in verdicts) or "nothing checked"
    pending = f"; still retrying {summary.pending}" if summary.pending else ""
    return f"Reconciled: {outcome}; {', '.join(changes) or 'nothing to change'}{pending}."
