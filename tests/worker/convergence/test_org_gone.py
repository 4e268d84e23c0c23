"""An org gone, or a member gone from it, with no event saying so (issue 21, both found by the model's oracle).

Kinde answers ORGANIZATION_NOT_FOUND to the member listing. The pass used to fail for good (dead-lettered), every
billing event and reconcile pass alike, so nothing cleared what the members held there; now it does what
`organization.deleted` does, and tells a reconcile sweep it ended.
"""

from __future__ import annotations

import time

from common.entitlements.snapshots import RedisSnapshotStore
from tests.worker.conftest import World
from tests.worker.convergence.test_convergence import paying_org, user_updated
from tests.worker.customers.test_placement import delete_org
from tests.worker.events.test_handlers import OLD
from worker.customers.customer_state import CustomerStates
from worker.events.handlers import converge_customer, handle_event
from worker.sweeps.reconcile import Watcher


def held_by(world: World, user_id: str) -> list[tuple[tuple[str, ...], list[dict[str, object]]]]:
    return [(s.roles, s.plans()) for s in RedisSnapshotStore(world.redis).of_user(user_id) if s.roles or s.plans()]


def test_a_pass_finding_its_org_gone_clears_what_the_members_held_and_ends_for_the_sweep(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_1")
    assert held_by(world, "kp_1") != []
    since = time.time()
    delete_org(world, "org_acme")  # organization.deleted is lost
    world.kinde.deleted_orgs.add("org_acme")

    assert converge_customer(world.deps, "customer_org", "reconcile", "msg_2") == "links_dropped"

    assert held_by(world, "kp_1") == []  # the read API, and so the table and a `removed` notification
    assert world.deps.links.get("customer_org") is None
    verdict = Watcher(CustomerStates(world.redis), world.dead_letters, since).verdict("customer_org")
    assert verdict is not None, "the sweep would wait until its deadline"
    assert verdict.outcome == "in_step"


def test_a_member_removed_from_a_paying_org_holds_nothing_there_at_its_next_user_event(world: World) -> None:
    """Kinde sends no event for a removal; the user's next event (its look-up lists its orgs) is the first word,
    and the org's customer may never pass again: what it gave the user there goes then, not at that pass."""
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_1")
    world.kinde.users["kp_1"]["organizations"].remove("org_acme")
    world.kinde.members["org_acme"].remove("kp_1")

    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)

    assert held_by(world, "kp_1") == []
    assert world.kinde.role_keys("org_acme", "kp_1") == []
    assert held_by(world, "kp_2") != []  # the member who stayed keeps it
