"""A join's `GrantStore.cover` racing a pass's write of the same customer's grant record (issue 21).

A user event's join converges (org, user) and then puts the target on each paying org customer's record
(worker/convergence/converge.py `join`), so that customer's next pass leaves it once Kinde no longer lists the user.
A pass of that customer reads its member listing, then the previous record, then writes its new record.
A cover landing before the previous record is read is safe: the target is on `previous` and not in the
listing, so the pass leaves it (and puts it back, Kinde listing the user by then). A cover landing between
that read and the write was overwritten: the target was on no record, and a user who left before the
customer's next pass kept the org's roles there. Here the join is made to land exactly in that window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from common.entitlements.grants import Grants, GrantStore, Target
from common.entitlements.snapshots import RedisSnapshotStore
from common.errors import RetryableError
from tests.worker.conftest import World
from tests.worker.convergence.test_convergence import org_member, paying_org, user_updated
from tests.worker.events.test_handlers import OLD
from worker.events.handlers import converge_customer, handle_event


class JoinBeforeWrite:
    """The world's grant store, except that the first write of `customer`'s record first runs `join`."""

    def __init__(self, inner: GrantStore, customer: str, join: Callable[[], None]) -> None:
        self.inner, self.customer, self.join = inner, customer, [join]

    def put(self, grants: Grants) -> bool:
        if grants.customer_id == self.customer and self.join:
            self.join.pop()()
        return self.inner.put(grants)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_join_covered_while_the_orgs_pass_writes_its_record_is_left_when_the_user_leaves(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_1")  # the org's record lists kp_1

    def join() -> None:  # kp_2 joins after the pass read its listing; its event is handled before the write
        org_member(world, "org_acme", "kp_2")
        handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD)

    racing = JoinBeforeWrite(world.deps.converger.grants, "customer_org", join)
    deps = replace(world.deps, converger=replace(world.deps.converger, grants=racing))
    converge_customer(deps, "customer_org", "reconcile", "msg_2")
    assert world.kinde.role_keys("org_acme", "kp_2") == ["role_client"]  # the join converged it

    world.kinde.users["kp_2"]["organizations"].remove("org_acme")  # kp_2 leaves before the org's next pass
    world.kinde.members["org_acme"].remove("kp_2")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_3")

    assert world.kinde.role_keys("org_acme", "kp_2") == []
    held = [(s.roles, s.plans()) for s in RedisSnapshotStore(world.redis).of_user("kp_2")]
    assert held in ([], [((), [])]), held  # the read API: nothing held in the org it left
    record = world.deps.converger.grants.get("customer_org")
    assert record is not None
    assert Target("org_acme", "kp_2") not in record.targets


def test_a_join_whose_role_write_fails_is_already_on_the_orgs_record(world: World) -> None:
    """The join is put on the record before its roles are written: a pass that dies between the two (here
    Kinde fails the roles read) leaves no target holding the org's roles that the org's record misses."""
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_1")
    org_member(world, "org_acme", "kp_2")
    world.kinde.fail_next = 1
    with pytest.raises(RetryableError):
        handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD)
    record = world.deps.converger.grants.get("customer_org")
    assert record is not None
    assert Target("org_acme", "kp_2") in record.targets
