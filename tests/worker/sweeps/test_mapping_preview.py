"""The start-up dry run of a plans.toml change: from the grant records alone, it names exactly what the
sweep then does. Real Redis for every store, the recording fake for Kinde."""

from __future__ import annotations

import time
from dataclasses import replace

from common.entitlements.grants import Target
from common.entitlements.manual_grants import HandGrant, RedisHandGrantStore
from common.plans.mapping import parse_plans
from common.plans.payments import failing_of
from tests.worker.conftest import PLANS, World
from tests.worker.convergence.test_convergence import paying_org
from tests.worker.events.test_handlers import OLD, user_created
from worker.events.handlers import converge_customer, handle_event
from worker.sweeps.mapping_preview import preview, records

SWAPPED = parse_plans('[plans]\nplan_subscriber = ["role_client"]\nplan_client = ["role_subscriber"]\n')
ONE_ROLE = parse_plans('[plans]\nplan_subscriber = ["role_client"]\nplan_client = ["role_client"]\n')


def customers(world: World) -> None:
    """org_acme pays plan_client for kp_1 and kp_2; kp_3 pays plan_subscriber and kp_4 plan_client themselves."""
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    for user, customer, plan in (("kp_3", "customer_3", "plan_subscriber"), ("kp_4", "customer_4", "plan_client")):
        world.kinde.add_user(user, customer)
        world.kinde.set_plan(customer, plan)
        assert handle_event(world.deps, user_created(f"ev_{user}", user), OLD) == "converged"


def test_the_dry_run_names_each_gain_and_loss_and_the_sweep_does_exactly_that(world: World) -> None:
    customers(world)
    found = preview(records(world.deps.links, world.deps.converger.grants), PLANS, SWAPPED, lambda _: False)

    changes = {c.target: (sorted(c.gained), sorted(c.lost)) for c in found.changes}
    assert changes == {
        Target("org_acme", "kp_1"): (["role_subscriber"], ["role_client"]),
        Target("org_acme", "kp_2"): (["role_subscriber"], ["role_client"]),
        Target("org_default", "kp_3"): (["role_client"], ["role_subscriber"]),
        Target("org_default", "kp_4"): (["role_subscriber"], ["role_client"]),
    }
    assert found.by_role() == {"role_client": {"gain": 1, "lose": 3}, "role_subscriber": {"gain": 3, "lose": 1}}
    assert (found.customers, found.targets) == (3, 4)

    swept = replace(world.deps, converger=replace(world.deps.converger, plans=SWAPPED))
    for customer in ("customer_org", "customer_3", "customer_4"):
        converge_customer(swept, customer, "mapping", f"request_{customer}")
    held = {t: world.kinde.role_keys(t.org_code, t.user_id) for t in changes}
    assert held == {t: gained for t, (gained, _) in changes.items()}


def test_a_role_the_new_mapping_no_longer_names_is_not_lost_but_left_alone(world: World) -> None:
    customers(world)
    found = preview(records(world.deps.links, world.deps.converger.grants), PLANS, ONE_ROLE, lambda _: False)
    assert found.unmanaged == {"role_subscriber"}
    assert [(c.target, sorted(c.gained), sorted(c.lost)) for c in found.changes] == [
        (Target("org_default", "kp_3"), ["role_client"], [])
    ]


def test_a_suspended_customer_is_previewed_with_the_grants_it_would_hold(world: World) -> None:
    customers(world)
    assert world.deps.converger.payments is not None
    world.deps.converger.payments.record("customer_3", "failing", 1.0)
    suspends = parse_plans(
        '[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n'
        '[payment_failed]\naction = "suspend"\ngrants = ["role_admin"]\n'
    )
    failing = failing_of(world.deps.converger.payments, PLANS, suspends)
    found = preview(records(world.deps.links, world.deps.converger.grants), PLANS, suspends, failing)
    assert [(c.target, sorted(c.gained), sorted(c.lost)) for c in found.changes] == [
        (Target("org_default", "kp_3"), ["role_admin"], ["role_subscriber"])
    ]


def test_a_role_a_hand_grant_gives_is_not_previewed_as_lost(world: World) -> None:
    customers(world)
    RedisHandGrantStore(world.redis).put(HandGrant("hg_1", "kp_3", "", ("role_subscriber",), "staff", "ada", 0.0),
                                         time.time())  # fmt: skip

    found = preview(records(world.deps.links, world.deps.converger.grants), PLANS, SWAPPED, lambda _: False,
                    world.deps.converger.targets.hand_roles)  # fmt: skip

    changes = {c.target: (sorted(c.gained), sorted(c.lost)) for c in found.changes}
    assert changes[Target("org_default", "kp_3")] == (["role_client"], [])  # the grant keeps role_subscriber
