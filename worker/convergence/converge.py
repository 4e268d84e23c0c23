"""One billing customer's pass, from Kinde's current state, never from an event's delta.

agreements (all pages; active = no `expires_on` or one in the future) → plan codes → plans.toml →
the managed roles the customer grants → its grant record (common/entitlements/grants.py) → every target it
covers, and every target it covered last time and no longer does, converged to the union of what
all covering customers grant (worker/convergence/targets.py). Roles not named in plans.toml are never touched,
so a role given by hand survives every plan change. B2C: the linked user in the link's org (else
`KINDE_ORG_CODE`, else the tenant's default org). B2B: every member of the linked org.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import structlog

from common.customers.links import CustomerLink, LinkStore, placed_org
from common.entitlements.customer import EntitlementStore
from common.entitlements.grants import ALL_MEMBERS, BORROWED, Grants, GrantStore, Target
from common.entitlements.manual_grants import HandGrantStore
from common.entitlements.shadow_writes import ShadowLog
from common.entitlements.snapshots import SnapshotStore
from common.errors import PermanentError, RetryableError
from common.guard.members import MemberCache
from common.plans.mapping import PlanMap
from common.plans.payments import PaymentStore, failing_of
from worker.convergence.deleted import Deletions
from worker.convergence.entitlements import EntitlementKeeper
from worker.convergence.in_force import InForce, active_plan_codes, read_in_force
from worker.convergence.snapshot import SnapshotKeeper
from worker.convergence.targets import Step, TargetConverger, TargetLocks
from worker.kinde.answers import GONE
from worker.kinde.api import KindeApi
from worker.kinde.roles import RoleCatalog
from worker.runtime import metrics

log = structlog.get_logger(__name__)
_warned_plans: set[str] = set()


@dataclass(frozen=True)
class Member:
    target: Target
    role_keys: frozenset[str] | None = None  # known from the member listing, else read per user


@dataclass
class Outcome:
    desired: frozenset[str]  # the managed roles this customer grants
    added: list[tuple[str, str]] = field(default_factory=list)  # (user_id, role key), at any of its targets
    removed: list[tuple[str, str]] = field(default_factory=list)
    entitlements_read: bool = False  # whether the pass asked Kinde for the customer's entitlements
    agreements_read: bool = True  # whether it read the agreements (not when the entitlements said it all)

    def reads(self) -> list[str]:
        """What the pass read of the customer's billing, as its history entry names it."""
        return [name for name, done in (("agreements", self.agreements_read), ("entitlements", self.entitlements_read))
                if done]  # fmt: skip

    def merge(self, step: Step) -> Step:
        self.added.extend(step.added)
        self.removed.extend(step.removed)
        return step


def left_targets(previous: Grants | None, current: Grants) -> list[Target]:
    """Targets the customer covered at its last pass and covers no more: its roles leave with it."""
    return sorted(set(previous.targets) - set(current.targets)) if previous else []


def warn_unknown_plans(plans: PlanMap, codes: list[str]) -> None:
    for code in sorted(plans.unknown_plans(codes) - _warned_plans):
        _warned_plans.add(code)
        log.warning("unknown_plan_ignored", plan_code=code, hint="add it to plans.toml to grant roles")


@dataclass(frozen=True)
class Converger:
    kinde: KindeApi
    catalog: RoleCatalog
    plans: PlanMap
    b2c_org: Callable[[], str]  # KINDE_ORG_CODE or the tenant's default org
    grants: GrantStore
    links: LinkStore
    locks: TargetLocks
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    payments: PaymentStore | None = None  # read only under plans.toml's `[payment_failed] action = "suspend"`
    entitlements: EntitlementStore | None = None  # with `snapshots`: keep the snapshot (docs/architecture.md)
    snapshots: SnapshotStore | None = None
    member_cache: MemberCache | None = None  # an org pass's member listing also counts the org for the guard
    deletions: Deletions | None = None  # users and orgs Kinde deleted: no snapshot is stored there after
    hand_grants: HandGrantStore | None = None  # roles given by hand: covering parties of their targets too
    clock: Callable[[], float] = time.time  # when a hand grant ends (injectable in tests)
    shadow: ShadowLog | None = None  # ROLESYNC_MODE=shadow: record what would be written, write no role

    @cached_property
    def targets(self) -> TargetConverger:
        by_hand = self.hand_grants.of_user if self.hand_grants is not None else None
        return TargetConverger(self.kinde, self.catalog, self.plans.managed_roles, self.links, self.grants,
                               self.locks, self.b2c_org, self.borrow, self.roles_of, self.keeper, by_hand,
                               self.clock, self.shadow, self.why_plan)  # fmt: skip

    def why_plan(self, record: Grants, role: str) -> str:
        """Which of a covering customer's plans gives `role`, as its plans.toml line says (shadow report)."""
        lines = [f"plan {p} (plans.toml: {p} = {sorted(self.plans.desired_roles([p]))})" for p in record.plans
                 if role in self.plans.desired_roles([p])]  # fmt: skip
        return "; ".join(lines) or "[payment_failed] grants (its payment is failing)"

    @cached_property
    def keeper(self) -> SnapshotKeeper | None:
        if self.entitlements is None or self.snapshots is None:
            return None
        deleted = self.deletions.deleted if self.deletions is not None else lambda _: False
        return SnapshotKeeper(self.snapshots, self.entitlements, self.standing, self.suspended, deleted)

    @cached_property
    def entitlement_reads(self) -> EntitlementKeeper | None:
        """None under plans.toml's `[entitlements] enabled = false`: the snapshot then lists no features."""
        if self.entitlements is None or not self.plans.entitlements_enabled:
            return None
        return EntitlementKeeper(self.entitlements)

    def standing(self, customer_id: str) -> dict[str, Any] | None:
        return self.payments.standing(customer_id) if self.payments is not None else None

    def roles_of(self, record: Grants) -> frozenset[str]:
        """What a record's plans grant under the plans.toml and payment standing in force now."""
        return self.desired(record.customer_id, list(record.plans))

    def run(
        self,
        link: CustomerLink,
        generation: int = BORROWED,
        check: Callable[[], None] = lambda: None,
    ) -> Outcome:
        """Record what the customer grants and where, then converge every target it covers or just left.

        `check` raises if the pass lost its customer lease; it is called before each target.
        """
        record, snapshot, members, held = self.read(link, generation)
        previous = self.grants.get(link.customer_id)
        outcome = Outcome(record.roles, agreements_read=held.agreements is not None)
        self.grants.add_leaving(link.customer_id, left_targets(previous, record))  # before the record forgets them
        if not self.grants.put(record):
            log.info("pass_superseded", generation=generation)  # a newer pass recorded (and converged) more
            return outcome
        if self.entitlement_reads is not None:  # before the targets: their snapshots show the new features
            outcome.entitlements_read = self.entitlement_reads.keep(link.customer_id, held, generation)
        for member in members:
            check()
            converge = self.targets.converge
            outcome.merge(converge(member.target, member=True, listed=member.role_keys, since=snapshot, own=record))
        for stored in self.grants.leaving(link.customer_id):
            check()
            self.leave(record, stored, outcome)
        return outcome

    def join(self, target: Target) -> Step:
        """A user event's new member of a paying org: converge the target now, and put it on each paying
        org customer's record, so that customer's next pass leaves it if Kinde no longer lists it. On the
        record first: a join whose roles are written is never missing from it (a crash between the two, or a
        reader who sees the roles), and a target on it that Kinde does not list is only left again."""
        for customer_id in self.links.payers_of_org(target.org_code):
            self.grants.cover(customer_id, target)
        return self.targets.converge(target, member=True)

    def left_member(self, target: Target) -> Step:
        """A user event's user is in the target's org no more (Kinde's look-up): what the org's customers gave
        it there goes now, not at their next pass (which may never come)."""
        return self.targets.converge(target, member=False)

    def leave(self, record: Grants, stored: Target, outcome: Outcome) -> None:
        """Converge a target the customer left without it (unless it covers the target again).

        Kinde decides: a target the customer still covers there (a member the listing, read before the
        user joined, did not show) goes back on its record. A target Kinde refuses outright (a 4xx
        other than "gone") is logged and let go: it must not block every later pass of the customer.
        """
        try:
            for target in self.left_targets_of(stored):
                if target in record.targets:
                    continue
                step = outcome.merge(self.targets.converge(target, member=None))
                if record.customer_id in step.covering:
                    self.grants.cover(record.customer_id, target)
        except PermanentError as exc:
            log.warning("left_target_refused", org_code=stored.org_code, user_id=stored.user_id, reason=exc.reason)
            metrics.LEFT_TARGETS_REFUSED.inc()
        self.grants.left(record.customer_id, stored)

    def left_targets_of(self, stored: Target) -> list[Target]:
        """A noted target, or every member of an org an org link left (`ALL_MEMBERS`)."""
        if stored.user_id != ALL_MEMBERS:
            return [Target(placed_org(stored.org_code, self.b2c_org), stored.user_id)]
        try:
            rows = list(self.kinde.org_members(stored.org_code))
        except PermanentError as exc:
            if exc.reason not in GONE:
                raise
            return []  # the org is gone, and its roles with it
        return [Target(stored.org_code, str(row["id"])) for row in rows if row.get("id")]

    def read(self, link: CustomerLink, generation: int) -> tuple[Grants, int, list[Member], InForce]:
        """The customer's record as Kinde has it now, the target-write counter, its members, what is in force."""
        held = read_in_force(self.kinde, link.customer_id, self.now(), entitlements=self.entitlement_reads is not None)
        codes = held.codes
        snapshot, listed_at = self.locks.snapshot(), time.time()
        members = list(self.members(link))
        self._count_members(link, members, listed_at)
        targets = tuple(m.target for m in members)
        roles = self.desired(link.customer_id, codes)
        record = Grants(link.customer_id, tuple(codes), roles, targets, generation, time.time())
        return record, snapshot, members, held

    def _count_members(self, link: CustomerLink, members: list[Member], listed_at: float) -> None:
        """The listing the pass just read is the guard's member count too (no call of its own); best effort."""
        if self.member_cache is None or link.kind != "org" or not link.org_code:
            return
        try:
            self.member_cache.replace(link.org_code, [m.target.user_id for m in members], listed_at)
        except RetryableError as exc:  # the guard's count must never fail a pass
            log.warning("org_members_count_failed", org_code=link.org_code, error=str(exc))

    def borrow(self, customer_id: str, target: Target) -> Grants:
        """A covering customer's grants read now, for a target's union, when it has no record yet."""
        codes = active_plan_codes(self.kinde.agreements(customer_id), self.now())
        record = Grants(customer_id, tuple(codes), self.desired(customer_id, codes), (target,), BORROWED, time.time())
        self.grants.put(record)
        return record

    def desired(self, customer_id: str, codes: list[str]) -> frozenset[str]:
        """The plans' roles, or the `[payment_failed]` grants while a paying customer's payment is failing
        (`PlanMap.granted`, common/plans/mapping.py); the standing is read once, only if it can matter."""
        failing = bool(codes) and self.failing(customer_id)
        if self.plans.suspended(codes, failing=failing):
            log.info("plan_roles_suspended", plan_codes=codes, reason="payment_failing")
        else:
            warn_unknown_plans(self.plans, codes)
        return self.plans.granted(codes, failing=failing)

    def suspended(self, customer_id: str, codes: Sequence[str]) -> bool:
        return self.plans.suspended(codes, failing=bool(codes) and self.failing(customer_id))

    @cached_property
    def failing(self) -> Callable[[str], bool]:
        return failing_of(self.payments, self.plans)

    def members(self, link: CustomerLink) -> Iterator[Member]:
        if link.kind == "user" and link.user_id:
            yield Member(Target(link.placed_org(self.b2c_org), link.user_id))
            return
        if not link.org_code:
            raise PermanentError(f"link of {link.customer_id} names no user and no org", reason="link_incomplete")
        for row in self.kinde.org_members(link.org_code):
            if row.get("id"):
                yield Member(Target(link.org_code, str(row["id"])), _role_keys(row.get("roles")))


def _role_keys(roles: Any) -> frozenset[str] | None:
    if not isinstance(roles, list):
        return None
    return frozenset(str(r.get("key") if isinstance(r, dict) else r) for r in roles if r)
