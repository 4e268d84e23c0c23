"""Placement is a function of Kinde's state alone (chaos/model_oracle.py `placement`): where a customer's roles land."""

from __future__ import annotations

from typing import Any

from tests.worker.conftest import World
from tests.worker.convergence.test_convergence import org_member
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.events.handlers import handle_event


def org_deleted(event_id: str, org: str) -> dict[str, Any]:
    return {"type": "organization.deleted", "event_id": event_id, "data": {"organization": {"code": org}}}


def delete_org(world: World, org: str) -> None:
    """As Kinde (and the sandbox) do it: memberships go with the org; only `organization.deleted` is sent."""
    for user in world.kinde.members.pop(org, []):
        world.kinde.users[user]["organizations"].remove(org)
    world.kinde.orgs.pop(org, None)


def test_deleting_one_of_a_users_two_orgs_places_the_customer_in_the_org_that_is_left(world: World) -> None:
    # Oracle: kp_1 in org_a and org_b, no KINDE_ORG_CODE, not in the default org -> B2C (covers nothing);
    # after org_b is deleted kp_1 is in org_a only -> customer_1 covers (org_a, kp_1).
    world.kinde.add_user("kp_1", "customer_1", org="org_a")
    org_member(world, "org_b", "kp_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert world.kinde.role_keys("org_a", "kp_1") == []

    delete_org(world, "org_b")
    handle_event(world.deps, org_deleted("ev_od", "org_b"), OLD)
    world.run_rebuilds()
    # Nothing changes in Kinde from here on; even a later billing event naming the user does not help.
    world.kinde.set_plan("customer_1", "plan_client")
    handle_event(world.deps, billing("ev_b", "customer_1", user_id="kp_1"), OLD)

    assert world.kinde.role_keys("org_a", "kp_1") == ["role_client"]


def test_a_link_an_event_teaches_follows_the_placement_rule(world: World) -> None:
    # kp_1 signs up in org_shop without a billing customer (user.created: no customer), then checks out:
    # the billing events carry user_id (sandbox variant "with_owner"), no org.
    # Oracle: kp_1's only org is org_shop, the entry names none -> (org_shop, kp_1).
    world.kinde.add_user("kp_1", None, org="org_shop")
    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "no_customer"
    world.kinde.users["kp_1"]["billing"] = {"customer_id": "customer_1"}
    world.kinde.set_plan("customer_1", "plan_subscriber")

    assert handle_event(world.deps, billing("ev_b", "customer_1", user_id="kp_1"), OLD) == "converged"

    assert world.kinde.role_keys("org_shop", "kp_1") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


def test_a_rebuild_without_the_users_billing_expand_still_corrects_an_event_taught_placement(world: World) -> None:
    # As above, then `rolesync reconcile` (a rebuild, then a pass per customer) on a tenant whose
    # GET /users refuses expand=billing (kinde_INVALID_EXPAND_VALUES): the one-by-one walk looks up
    # only users without a link, so the event's wrong placement survives the reconcile.
    from common.errors import PermanentError
    from worker.customers.placement import INVALID_EXPAND
    from worker.events.handlers import converge_customer

    world.kinde.add_user("kp_1", None, org="org_shop")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    world.kinde.users["kp_1"]["billing"] = {"customer_id": "customer_1"}
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_b", "customer_1", user_id="kp_1"), OLD)

    plain = world.kinde.users_page

    def no_billing_expand(*, expand_billing: bool, next_token: str | None) -> Any:
        if expand_billing:
            raise PermanentError("Invalid expand values: billing", reason=INVALID_EXPAND)
        return plain(expand_billing=False, next_token=next_token)

    world.kinde.users_page = no_billing_expand  # type: ignore[method-assign]
    world.deps.resolver.rebuilds.request(0.0)
    world.run_rebuilds()
    converge_customer(world.deps, "customer_1", "reconcile", "msg_r")

    assert world.kinde.role_keys("org_shop", "kp_1") == ["role_subscriber"]
