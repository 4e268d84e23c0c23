"""A customer that moves between targets (a user, an org) takes its roles with it and leaves the old target's."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from common import keys
from common.errors import RetryableError
from tests.worker.conftest import World
from tests.worker.convergence.failed_reads import fail_reads_of
from tests.worker.convergence.test_convergence import org_member, paying_org, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.customers.park import link_customer
from worker.events.handlers import converge_customer, handle_event

# --- 1. a pass that fails after writing its record forgets the targets it left ---


def test_a_moved_customer_whose_pass_failed_once_still_takes_its_roles_from_the_old_user(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]

    link_customer(world.deps.parking, "customer_1", user_id="kp_2", org_code="org_default")
    fail_reads_of(world, "org_default", "kp_1")  # one 503 while converging the target it left
    with pytest.raises(RetryableError):
        converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    assert converge_customer(world.deps, "customer_1", "link_moved", "msg_1") == "converged"  # the retry

    assert world.kinde.role_keys("org_default", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


# --- 3. upgrade: a customer without a record that moves leaves its roles behind ---


def test_a_customer_without_a_record_that_moves_takes_its_roles_with_it(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    world.redis.delete(keys.customer_grants("customer_1"))  # granted by the version before grant records

    link_customer(world.deps.parking, "customer_1", user_id="kp_2", org_code="org_default")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")

    assert world.kinde.role_keys("org_default", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


# --- B2B upgrade: an org customer without a record that moves leaves the old org's members their roles ---


def test_an_org_customer_without_a_record_that_moves_takes_its_roles_with_it(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client"]
    world.redis.delete(keys.customer_grants("customer_org"))  # granted by the version before grant records
    world.kinde.orgs["org_new"] = {"code": "org_new"}
    org_member(world, "org_new", "kp_3")

    link_customer(world.deps.parking, "customer_org", org_code="org_new")  # on-call: it is org_new's customer
    converge_customer(world.deps, "customer_org", "link_moved", "msg_1")

    assert world.kinde.role_keys("org_new", "kp_3") == ["role_client"]
    assert world.kinde.role_keys("org_acme", "kp_1") == []
    assert world.kinde.role_keys("org_acme", "kp_2") == []


# --- A -> B -> A with a failure in between ---


def test_a_customer_moved_back_and_forth_with_a_failed_pass_ends_where_its_link_is(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    link_customer(world.deps.parking, "customer_1", user_id="kp_2")
    fail_reads_of(world, "org_default", "kp_1")
    with pytest.raises(RetryableError):
        converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    link_customer(world.deps.parking, "customer_1", user_id="kp_1")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_2")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")  # the first one's retry, late
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_2") == []
    assert world.deps.converger.grants.leaving("customer_1") == []


def test_a_customer_moved_twice_before_any_pass(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.add_user("kp_3", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    link_customer(world.deps.parking, "customer_1", user_id="kp_2")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    link_customer(world.deps.parking, "customer_1", user_id="kp_3")
    link_customer(world.deps.parking, "customer_1", user_id="kp_1")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_2")
    assert [world.kinde.role_keys("org_default", u) for u in ("kp_1", "kp_2", "kp_3")] == [["role_subscriber"], [], []]


# --- the link moves while the customer's pass runs ---


def test_a_link_moved_while_its_pass_runs(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    world.kinde.set_plan("customer_1", "plan_client")
    original, done = world.kinde.user_roles, {"n": 0}

    def move_meanwhile(org: str, user: str) -> list[dict[str, Any]]:
        if not done["n"]:
            done["n"] = 1
            link_customer(world.deps.parking, "customer_1", user_id="kp_2")
        return original(org, user)

    world.kinde.user_roles = move_meanwhile  # type: ignore[method-assign]
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    assert world.kinde.role_keys("org_default", "kp_2") == ["role_client"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


# --- a pass that read the link before the move and took the lease after the move's pass finished ---


def test_a_pass_holding_a_link_read_before_a_move_does_not_undo_the_move(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    coalescer, once = world.deps.coalescer, {"n": 0}
    original_assign = coalescer.assign

    def move_between_read_and_assign(event_id: str, customer_id: str) -> int:
        if event_id.startswith("converge:reconcile") and not once["n"]:
            once["n"] = 1  # reconcile read the link (kp_1); on-call moves it and the move's pass runs
            link_customer(world.deps.parking, "customer_1", user_id="kp_2")
            converge_customer(world.deps, "customer_1", "link_moved", "msg_move")
        return original_assign(event_id, customer_id)

    coalescer.assign = move_between_read_and_assign  # type: ignore[method-assign]
    converge_customer(world.deps, "customer_1", "reconcile", "msg_r")
    link = world.deps.links.get("customer_1")
    assert link is not None
    assert link.user_id == "kp_2"
    assert world.kinde.role_keys("org_default", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


# --- a B2C leaving entry noted as org "" is resolved against KINDE_ORG_CODE only when the pass runs ---


def test_a_move_noted_before_kinde_org_code_changed_takes_the_roles_from_the_old_org(world: World) -> None:
    from dataclasses import replace

    world.kinde.add_user("kp_1", "customer_1")
    org_member(world, "org_b2c", "kp_1")
    world.kinde.add_user("kp_2", None)
    org_member(world, "org_b2c", "kp_2")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_0", "customer_1", user_id="kp_1"), OLD)  # link: kp_1, org None
    link = world.deps.links.get("customer_1")
    assert link is not None
    assert link.org_code is None
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    world.redis.delete(keys.customer_grants("customer_1"))  # granted before grant records

    link_customer(world.deps.parking, "customer_1", user_id="kp_2")  # noted: ("", kp_1)
    # the deploy that carries the move's pass also sets KINDE_ORG_CODE=org_b2c
    deps = replace(world.deps, converger=replace(world.deps.converger, b2c_org=lambda: "org_b2c"))
    converge_customer(deps, "customer_1", "link_moved", "msg_1")

    assert world.kinde.role_keys("org_b2c", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


# --- on-call's link against a later user look-up / rebuild ---


def test_kindes_billing_data_wins_over_an_on_call_link_and_says_so(world: World) -> None:
    """The judge of access is Kinde's state: an on-call link Kinde's billing contradicts is replaced, logged."""
    world.kinde.add_user("kp_1", "customer_1")  # Kinde's billing still names customer_1 on kp_1
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    link_customer(world.deps.parking, "customer_1", user_id="kp_2")  # on-call: the roles belong to kp_2
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    assert world.kinde.role_keys("org_default", "kp_2") == ["role_subscriber"]

    with capture_logs() as logs:
        handle_event(world.deps, user_updated("ev_u2", "kp_1"), OLD)  # kp_1 edits a profile field
    link = world.deps.links.get("customer_1")
    assert link is not None
    assert (link.user_id, link.source) == ("kp_1", "user_lookup")
    assert any(e["event"] == "on_call_link_replaced" for e in logs)
    converge_customer(world.deps, "customer_1", "link_moved", "msg_2")  # the pass the move queued
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_2") == []


# --- unmanaged roles survive moves, leaves and borrowed unions ---


def test_unmanaged_roles_survive_every_move(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.held[("org_default", "kp_1")] = {"r-adm"}
    world.kinde.held[("org_default", "kp_2")] = {"r-adm"}
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    link_customer(world.deps.parking, "customer_1", user_id="kp_2")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    link_customer(world.deps.parking, "customer_1", user_id="kp_1")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_2")
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_admin", "role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_2") == ["role_admin"]
    assert not [w for w in world.kinde.writes() if "r-adm" in w]
