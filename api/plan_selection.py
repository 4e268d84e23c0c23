"""`POST /v1/plan-selection`: the answer Kinde's plan-selection workflow asks for, from cached data.

Authenticated by the `x-rolesync-workflow-secret` header (ROLESYNC_WORKFLOW_SECRET, compared in
constant time); 401 without it or with a wrong one, 404 while the secret is unset (the guard is off),
400 for a body that is not a context object (api/contract.py), 503 only while plans.toml cannot be read (no policy to
apply). Otherwise 200 `{"allow", "message", "reasons"}`:

* the paying customer (common/customers/payer.py) and its usage come from Redis; unknown customer or plan: allow;
* `org_members` from the member cache (common/guard/members.py): a stale count answers now and asks for a
  refresh; a missing one asks and waits up to `[guard] member_wait_s`, then `on_error` applies;
* any Redis failure or an answer slower than the bound also applies `on_error`, logged and counted.

Every decision about a known customer lands in its own capped decision list (common/guard/selection_log.py;
the customer's history shows it merged with the timeline), written just after the answer is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Collection
from dataclasses import dataclass, field

import structlog
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import contract, views
from api.bodies import BadBodyError, json_body
from api.contract import to_body
from api.guard_store import Candidate, GuardStore
from api.metrics import Metrics
from api.selection import MAX_BODY_BYTES, BadSelectionError, Selection, selection_of
from common.customers.history import entry
from common.customers.payer import members_org, payer_of, personal_team
from common.errors import RetryableError
from common.guard.decision import Decision, Observed, allowed, before_reading, decide, fallback, usage_value
from common.guard.members import MemberCount
from common.plans.limits import ORG_MEMBERS
from common.plans.mapping import PlanMap
from common.settings import Secret

log = structlog.get_logger(__name__)
SECRET_HEADER = "x-rolesync-workflow-secret"  # noqa: S105 - the header's name, not a secret
POLL_S = 0.05
BOUND_MARGIN_S = 1.0  # beyond member_wait_s: Redis answers in ms, its client times out after 1 s
ASKED_LOCAL_S = 5.0  # a refresh this process asked for is not asked again sooner (Redis holds the real interval)
ASKED_CAP = 10_000  # orgs remembered; past it the memory starts over (costs a round trip each, no more)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    customer_id: str | None  # the paying customer, whose timeline the decision goes to; None if unknown


@dataclass(frozen=True)
class Guard:
    store: GuardStore
    plans: PlanMap
    metrics: Metrics
    history_ttl_s: int
    b2c_org: str = ""  # KINDE_ORG_CODE; else the tenant's default org the worker cached
    # org -> monotonic time until which this process does not ask again: while Kinde is slow, every decision
    # on a stale org would otherwise pay a round trip to find Redis's once-per-interval key already set.
    _asked: dict[str, float] = field(default_factory=dict, repr=False)

    async def answer(self, selection: Selection) -> Verdict:
        """The decision, bounded in time; on_error when it cannot be made from what Redis holds in time."""
        try:
            async with asyncio.timeout(self.plans.guard.member_wait_s + BOUND_MARGIN_S):
                return await self._decide(selection)
        except (RetryableError, TimeoutError) as exc:
            return self._fallback(selection, None, "redis" if isinstance(exc, RetryableError) else "timeout")

    async def _decide(self, selection: Selection) -> Verdict:
        wanted = self.plans.limits.get(selection.requested_plan) or {}
        placed = await self.store.placement(selection.user_id, selection.org_code, self.b2c_org,
                                            ORG_MEMBERS in wanted)  # fmt: skip
        customer = payer_of(selection.org_code, placed.user_links, placed.payers, placed.plans,
                            selection.current_plan, placed.b2c_org)  # fmt: skip
        early = before_reading(self.plans, selection.requested_plan, customer is not None)
        if early is not None or customer is None:
            return self._settled(selection, customer, early or allowed("unknown_customer"))
        found = placed.candidates[customer]
        org = members_org(found.link, placed.b2c_org) if found.link and ORG_MEMBERS in wanted else None
        observed, unreadable = await self._observed(found, org, wanted.keys())
        decision = decide(selection.requested_plan, self.plans.limits, self.plans.guard, observed, unreadable)
        if decision.outcome in ("fallback_allow", "fallback_deny"):
            self._count_fallback(selection, customer, "members_unavailable", decision)
        return self._settled(selection, customer, decision)

    async def _observed(
        self, found: Candidate, org: str | None, metrics: Collection[str]
    ) -> tuple[dict[str, Observed], frozenset[str]]:
        observed = {m: usage_value(m, found.usage.meter, found.usage.app) for m in metrics if m != ORG_MEMBERS}
        if ORG_MEMBERS not in metrics:
            return observed, frozenset()
        if (team := personal_team(found.link)) is not None:
            return {**observed, ORG_MEMBERS: team}, frozenset()
        members = await self._members(org, found.members) if org else None
        if members is None:
            return observed, frozenset({ORG_MEMBERS})
        return {**observed, ORG_MEMBERS: members}, frozenset()

    async def _members(self, org_code: str, found: MemberCount | None) -> Observed | None:
        """The org's cached member count; a stale one asks for a refresh, a missing one waits for it."""
        policy = self.plans.guard
        if found is not None and time.time() - found.read_at > policy.member_refresh_s:
            await self._ask(org_code, policy.member_refresh_s)
        deadline = time.monotonic() + policy.member_wait_s
        if found is None:
            await self._ask(org_code, max(policy.member_wait_s, 1.0))
        while found is None and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            found = await self.store.members(org_code)
        return Observed(found.count, "kinde_members", found.read_at) if found else None

    async def _ask(self, org_code: str, hold_s: float) -> None:
        now = time.monotonic()
        if self._asked.get(org_code, 0.0) > now:
            return
        if len(self._asked) > ASKED_CAP:
            self._asked.clear()
        self._asked[org_code] = now + min(hold_s, ASKED_LOCAL_S)
        await self.store.ask_refresh(org_code, hold_s)

    def _fallback(self, selection: Selection, customer: str | None, reason: str) -> Verdict:
        decision = fallback(self.plans.guard.plan_name(selection.requested_plan), self.plans.guard)
        self._count_fallback(selection, customer, reason, decision)
        return self._settled(selection, customer, decision)

    def _count_fallback(self, selection: Selection, customer: str | None, reason: str, decision: Decision) -> None:
        self.metrics.guard_fallback(reason, self.plans.guard.on_error)
        log.warning("plan_selection_fell_back", reason=reason, on_error=self.plans.guard.on_error,
                    customer_id=customer, user_id=selection.user_id, org_code=selection.org_code)  # fmt: skip

    async def note(self, selection: Selection, verdict: Verdict) -> None:
        """The decision into the customer's decision list: run after the answer is sent, and never fails it."""
        decision = verdict.decision
        if verdict.customer_id is None:
            return
        item = entry("plan_selection", current_plan=selection.current_plan, requested_plan=selection.requested_plan,
                     allow=decision.allow, outcome=decision.outcome, reasons=list(decision.reasons),
                     user_id=selection.user_id, org_code=selection.org_code,
                     metrics={m: dict(c) for m, c in decision.checked.items()})  # fmt: skip
        try:
            await self.store.note(verdict.customer_id, item, self.history_ttl_s)
        except RetryableError as exc:
            log.warning("history_entry_dropped", kind="plan_selection", error=str(exc))

    def _settled(self, selection: Selection, customer: str | None, decision: Decision) -> Verdict:
        self.metrics.guard_decision(decision.outcome)
        log.info("plan_selection_decided", outcome=decision.outcome, allow=decision.allow, customer_id=customer,
                 user_id=selection.user_id, org_code=selection.org_code, current_plan=selection.current_plan,
                 requested_plan=selection.requested_plan, reasons=list(decision.reasons))  # fmt: skip
        return Verdict(decision, customer)


def secret_matches(expected: Secret, offered: str) -> bool:
    """Constant time in the secret (compared as SHA-256 digests, so its length does not show either)."""
    digest = hashlib.sha256(offered.encode()).digest()
    return hmac.compare_digest(hashlib.sha256(expected.reveal().encode()).digest(), digest)


async def plan_selection(request: Request) -> Response:
    secret: Secret = request.app.state.workflow_secret
    if not secret:
        return JSONResponse(views.error("guard_disabled", "the plan-selection guard is off: "
                                        "set ROLESYNC_WORKFLOW_SECRET on rolesync api"), status_code=404)  # fmt: skip
    if not secret_matches(secret, request.headers.get(SECRET_HEADER, "")):
        return JSONResponse(views.error("unauthorized", f"send the workflow secret in the {SECRET_HEADER} header"),
                            status_code=401)  # fmt: skip
    guard: Guard | None = request.app.state.guard
    if guard is None:
        return JSONResponse(views.error("unavailable", "plans.toml could not be read; see the API's log"),
                            status_code=503, headers={"Retry-After": "5"})  # fmt: skip
    try:
        selection = selection_of(await json_body(request, MAX_BODY_BYTES))
    except (BadBodyError, BadSelectionError) as exc:
        return JSONResponse(views.error("bad_request", str(exc)), status_code=400)
    verdict = await guard.answer(selection)
    # The timeline is written after the answer is sent: one Redis round trip less on the workflow's clock.
    decision = verdict.decision
    answer = to_body(contract.Decision(decision.allow, decision.message, list(decision.reasons)))
    return JSONResponse(answer, background=BackgroundTask(guard.note, selection, verdict))
