"""Converge one (org, user) target to the union of what every customer covering it grants.

The convergence model (docs/architecture.md): a target's managed roles are the union of the roles in
the grant records (common/entitlements/grants.py) of every customer covering it. A customer with a user link
covers (its org, or the B2C org, user); a customer with an org link covers every member of that org.
Whoever converges a target (any covering customer's pass, or a member's user event) computes the
same union, under the target's lease, from records each customer writes *before* it takes the
lease: whichever of two passes on one target runs second sees both records, so two customers never
undo each other. Every write is fenced: the lease is checked (and extended) right before it.

A hand grant (common/entitlements/manual_grants.py: roles given by hand to the target, with a reason and an
optional expiry) is a covering party too: the union takes the roles of every one still active by
the clock, so no pass removes them, and once it ends or is removed the next pass leaves them.

Shadow mode (`ROLESYNC_MODE=shadow`, `shadow` set): the same reads and union, but no role is written;
what would be written, and why, is recorded per target (common/entitlements/shadow_writes.py) and counted
(`rolesync_shadow_writes_total{op}`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import redis
import structlog

from common import keys
from common.customers.links import CustomerLink, LinkStore
from common.entitlements.grants import Grants, GrantStore, Target
from common.entitlements.manual_grants import HandGrant, covering
from common.entitlements.shadow_writes import NO_PLAN, ShadowLog, ShadowWrite
from common.errors import PermanentError
from common.infra import tracing
from common.infra.connections import redis_errors
from worker.convergence.lease import Lease, RedisLeases
from worker.convergence.snapshot import SnapshotKeeper
from worker.kinde.answers import GONE
from worker.kinde.api import KindeApi
from worker.kinde.roles import RoleCatalog
from worker.runtime import metrics

log = structlog.get_logger(__name__)
TARGET_LEASE_MS = 30_000
TARGET_POLL_S = 5.0  # a target step is one read and a few writes: waiting beats retrying the whole pass
# KEYS: the target's written key, the global write counter. ARGV: ttl ms.
_WROTE = """
local n = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], n, 'PX', ARGV[1])
return n
"""


@dataclass
class Step:
    added: list[tuple[str, str]] = field(default_factory=list)  # (user_id, role key)
    removed: list[tuple[str, str]] = field(default_factory=list)
    covering: frozenset[str] = frozenset()  # the customers whose grants the target's union was taken over


Giving = list[tuple[Grants, frozenset[str]]]  # each covering customer's record, with the roles it gives here
ByHandGiving = list[tuple[HandGrant, frozenset[str]]]  # each active hand grant covering it, likewise


def union(granting: Giving, by_hand: ByHandGiving) -> frozenset[str]:
    """The rule: what every covering customer and every active hand grant gives, together."""
    return frozenset().union(*(roles for _, roles in granting), *(roles for _, roles in by_hand))


class Fence(Protocol):
    def check(self) -> None:
        """Raise LeaseLostError unless the target's lease is still held."""

    def written_since(self, snapshot: int) -> bool:
        """Whether the target was written after `snapshot` (then a member listing read before is stale)."""

    def wrote(self) -> None: ...


class TargetLocks(Protocol):
    def snapshot(self) -> int:
        """A point in the sequence of target writes, taken before reading a member listing."""

    def hold(self, target: Target) -> AbstractContextManager[Fence]: ...


@dataclass(frozen=True)
class RedisFence:
    lease: Lease
    redis: redis.Redis
    target: Target
    record_write: Callable[..., object]

    def check(self) -> None:
        self.lease.check()

    def written_since(self, snapshot: int) -> bool:
        with redis_errors("reading a target's last write"):
            return int(str(self.redis.get(keys.target_written(self.target.key)) or 0)) > snapshot

    def wrote(self) -> None:
        with redis_errors("recording a target write"):
            self.record_write(keys=[keys.target_written(self.target.key), keys.TARGET_WRITES], args=[24 * 3600 * 1000])


class RedisTargetLocks:
    def __init__(self, client: redis.Redis, *, poll_s: float = TARGET_POLL_S) -> None:
        self._redis = client
        self._leases = RedisLeases(client, ttl_ms=TARGET_LEASE_MS, poll_s=poll_s, retry_after_s=0.5)
        self._wrote = client.register_script(_WROTE)

    def snapshot(self) -> int:
        with redis_errors("reading the target write counter"):
            return int(str(self._redis.get(keys.TARGET_WRITES) or 0))

    @contextmanager
    def hold(self, target: Target) -> Iterator[Fence]:
        with self._leases.hold(keys.target_lock(target.key), f"{target.user_id} in {target.org_code}") as lease:
            yield RedisFence(lease, self._redis, target, self._wrote)


@dataclass(frozen=True)
class TargetConverger:
    kinde: KindeApi
    catalog: RoleCatalog
    managed: frozenset[str]
    links: LinkStore
    grants: GrantStore
    locks: TargetLocks
    b2c_org: Callable[[], str]
    borrow: Callable[[str, Target], Grants]  # read a covering customer that has no record yet
    roles_of: Callable[[Grants], frozenset[str]]  # a record's plans under today's plans.toml and standing
    keeper: SnapshotKeeper | None = None  # records what is in force at each target converged
    hand_grants: Callable[[str], list[HandGrant]] | None = None  # a user's hand grants (HandGrantStore.of_user)
    clock: Callable[[], float] = time.time  # a hand grant covers its target until its `until` by this clock
    shadow: ShadowLog | None = None  # shadow mode: record what would be written instead of writing it
    why_plan: Callable[[Grants, str], str] = lambda g, _: f"plans {', '.join(g.plans)}"  # which plan gives a role

    def converge(
        self,
        target: Target,
        *,
        member: bool | None,
        listed: frozenset[str] | None = None,
        since: int | None = None,
        own: Grants | None = None,
    ) -> Step:
        """`member`: True/False when the caller knows, None to go by the org customers' last member listing.

        `listed`: the target's role keys from a member listing read when the write counter was `since`.
        `own`: the record of the customer whose pass covers this target (covering it whatever the links say).
        """
        step = Step()
        with self.locks.hold(target) as fence:
            try:
                granting, by_hand = self.granting(target, member, own), self.by_hand(target)
                step.covering = frozenset(g.customer_id for g, _ in granting)
                desired = union(granting, by_hand)
                fresh = since is not None and not fence.written_since(since)
                if self.shadow is not None:
                    self._shadow(target, step, desired, listed if fresh else None, granting, by_hand)
                else:
                    self._converge(target, fence, step, desired, listed if fresh else None)
            except PermanentError as exc:
                if exc.reason not in GONE:
                    raise
                log.info("target_gone", org_code=target.org_code, user_id=target.user_id, reason=exc.reason)
                if self.keeper:
                    self.keeper.gone(target)
                return step
            if self.keeper:
                self.keeper.record(target, granting, desired, by_hand)  # after the writes: never shows roles not held
        return step

    def desired(self, target: Target, member: bool | None, own: Grants | None = None) -> frozenset[str]:
        return union(self.granting(target, member, own), self.by_hand(target))

    def by_hand(self, target: Target) -> ByHandGiving:
        """Each hand grant covering the target now, with the managed roles it gives there."""
        if self.hand_grants is None:
            return []
        mine = covering(self.hand_grants(target.user_id), target, self.b2c_org, self.clock())
        return [(g, frozenset(g.roles) & self.managed) for g in mine]

    def hand_roles(self, target: Target) -> frozenset[str]:
        """Every role the hand grants covering the target give, managed or not (a mapping change's preview)."""
        if self.hand_grants is None:
            return frozenset()
        mine = covering(self.hand_grants(target.user_id), target, self.b2c_org, self.clock())
        return frozenset(r for g in mine for r in g.roles)

    def granting(self, target: Target, member: bool | None, own: Grants | None) -> list[tuple[Grants, frozenset[str]]]:
        """Each customer covering the target with the managed roles it grants there (`own` as it stands)."""
        others = [g for g in self.covering(target, member) if own is None or g.customer_id != own.customer_id]
        found = [(g, self.roles_of(g) & self.managed) for g in others]
        return [*found, (own, own.roles & self.managed)] if own else found

    def covering(self, target: Target, member: bool | None) -> list[Grants]:
        payers = self.links.payers_of_org(target.org_code)
        candidates = sorted({*self.links.customers_of_user(target.user_id), *payers})
        found = {c: link for c in candidates if (link := self.links.get(c)) is not None}
        if member is None and payers:
            member = self._is_member(target)  # only Kinde knows whether a user still belongs to a paying org
        chosen = [c for c, link in found.items() if self._covers(link, target, member)]
        records = self.grants.get_many(chosen)
        return [records.get(c) or self.borrow(c, target) for c in chosen]

    def _covers(self, link: CustomerLink, target: Target, member: bool | None) -> bool:
        if link.kind == "user":
            return link.user_id == target.user_id and link.placed_org(self.b2c_org) == target.org_code
        return link.org_code == target.org_code and bool(member)

    def _is_member(self, target: Target) -> bool:
        try:
            orgs = self.kinde.get_user(target.user_id).get("organizations") or []
        except PermanentError as exc:
            if exc.reason not in GONE:
                raise
            return False
        codes = {o.get("code") if isinstance(o, dict) else o for o in orgs}
        return target.org_code in codes

    def _converge(self, target: Target, fence: Fence, step: Step, desired: frozenset[str],
                  listed: frozenset[str] | None) -> None:  # fmt: skip
        current = dict.fromkeys(listed) if listed is not None else self._read(target)
        for key in sorted(desired - current.keys()):
            fence.check()
            try:
                self._add(target, key)
            finally:  # even an answer lost to a timeout may have been applied: a listing read before is stale
                fence.wrote()
            step.added.append((target.user_id, key))
        for key in sorted((self.managed & current.keys()) - desired):
            fence.check()
            try:
                self._remove(target, key, current[key])
            finally:
                fence.wrote()
            step.removed.append((target.user_id, key))

    def _shadow(self, target: Target, step: Step, desired: frozenset[str], listed: frozenset[str] | None,
                granting: Giving, by_hand: ByHandGiving) -> None:  # fmt: skip
        """Record what `_converge` would write, and why; write nothing."""
        held = set(listed) if listed is not None else set(self._read(target))
        add, remove = sorted(desired - held), sorted((self.managed & held) - desired)
        step.added += [(target.user_id, key) for key in add]
        step.removed += [(target.user_id, key) for key in remove]
        for op, found in (("add", add), ("remove", remove)):
            if found:
                metrics.SHADOW_WRITES.labels(op).inc(len(found))
        why = {key: self._givers(key, granting, by_hand) for key in add} | {key: [NO_PLAN] for key in remove}
        write = ShadowWrite(target.org_code, target.user_id, tuple(add), tuple(remove), why, time.time())
        assert self.shadow is not None
        self.shadow.record(target, write if add or remove else None)

    def _givers(self, key: str, granting: Giving, by_hand: ByHandGiving) -> list[str]:
        customers = [f"customer {g.customer_id}: {self.why_plan(g, key)}" for g, roles in granting if key in roles]
        return customers + [f"hand grant {g.grant_id}: {g.reason}" for g, roles in by_hand if key in roles]

    def _read(self, target: Target) -> dict[str, str | None]:
        """role key → id, as Kinde holds them now."""
        rows = self.kinde.user_roles(target.org_code, target.user_id)
        return {str(r["key"]): str(r["id"]) if r.get("id") else None for r in rows if r.get("key")}

    def _add(self, target: Target, key: str) -> None:
        with tracing.span("role.write", _role_span("add", target, key)):
            self._added(target, key)

    def _added(self, target: Target, key: str) -> None:
        try:
            self.kinde.add_role(target.org_code, target.user_id, self.catalog.id_of(key))
        except PermanentError as exc:
            if exc.reason != "kinde_ROLE_NOT_FOUND":
                raise
            self.catalog.forget()  # the cached id is stale (role re-created); one fresh look-up
            self.kinde.add_role(target.org_code, target.user_id, self.catalog.id_of(key))

    def _remove(self, target: Target, key: str, role_id: str | None) -> None:
        with tracing.span("role.write", _role_span("remove", target, key)):
            self._removed(target, key, role_id)

    def _removed(self, target: Target, key: str, role_id: str | None) -> None:
        if self.kinde.remove_role(target.org_code, target.user_id, role_id or self.catalog.id_of(key)):
            return
        # Kinde had no such role there: our id may be stale (the role was re-created), so look again.
        self.catalog.forget()
        fresh = self._read(target).get(key)
        if fresh:
            self.kinde.remove_role(target.org_code, target.user_id, fresh)


def _role_span(action: str, target: Target, key: str) -> dict[str, str]:
    return {"role.action": action, "role.id": key, "org.code": target.org_code, "user.id": target.user_id}
