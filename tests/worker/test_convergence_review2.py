"""A second review of the convergence model: sequences that ended wrong after the first fixes."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from common import keys
from common.errors import RetryableError
from tests.worker.conftest import World
from tests.worker.convergence.test_convergence import org_member, paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from tests.worker.test_convergence_review import fail_reads_of
from worker.customers.park import link_customer
from worker.events.handlers import converge_customer, handle_event

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


# --- the dry run writes nothing real ---


def _dump(world: World) -> dict[str, Any]:
    out = {}
    for key in world.redis.scan_iter("*"):
        kind = world.redis.type(key)
        if kind == "string":
            out[key] = world.redis.get(key)
        elif kind == "set":
            out[key] = sorted(world.redis.smembers(key))
        elif kind == "hash":
            out[key] = world.redis.hgetall(key)
        elif kind == "zset":
            out[key] = world.redis.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = kind
    return out


def test_the_dry_run_writes_nothing_real(world: World) -> None:
    from ops.reconcile import dry_run

    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    world.kinde.users["kp_2"]["organizations"] = ["org_acme"]
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    world.kinde.add_user("kp_3", None)
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    world.redis.delete(keys.customer_grants("customer_org"))  # a customer to borrow
    link_customer(world.deps.parking, "customer_me", user_id="kp_3")  # a pending move, a leaving entry
    world.kinde.members["org_acme"].remove("kp_2")
    world.kinde.users["kp_2"]["organizations"] = []
    world.kinde.set_plan("customer_org", "plan_subscriber")
    world.deps.converger.catalog.id_of("role_client")  # catalog warmed, as a running fleet has it
    before, held, writes = _dump(world), {k: set(v) for k, v in world.kinde.held.items()}, len(world.kinde.writes())

    previews = dry_run(world.deps, None, discover=False)

    assert any(p.drift for p in previews), previews
    assert len(world.kinde.writes()) == writes
    assert {k: set(v) for k, v in world.kinde.held.items()} == held
    assert _dump(world) == before


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


# --- _is_member failing transiently while leaving ---


def test_a_leave_whose_membership_lookup_fails_once_is_retried(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    world.kinde.add_user("kp_3", None, org="org_other")
    link_customer(world.deps.parking, "customer_me", user_id="kp_3", org_code="org_other")
    original, left = world.kinde.get_user, {"n": 1}

    def flaky(user_id: str) -> dict[str, Any]:
        if left["n"]:
            left["n"] -= 1
            raise RetryableError("Kinde answered 503", reason="kinde_503")
        return original(user_id)

    world.kinde.get_user = flaky  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        converge_customer(world.deps, "customer_me", "link_moved", "msg_1")
    converge_customer(world.deps, "customer_me", "link_moved", "msg_1")
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client"]
    assert world.kinde.role_keys("org_other", "kp_3") == ["role_subscriber"]


# --- cost ---


def test_a_b2c_plan_change_in_an_org_that_also_pays_costs_at_most_four_calls(world: World) -> None:
    paying_org(world, "org_default", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_1", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    world.kinde.set_plan("customer_1", None)
    world.kinde.set_plan("customer_1", "plan_client")
    world.kinde.set_plan("customer_org", "plan_subscriber")
    converge_customer(world.deps, "customer_org", "reconcile", "m0")
    world.kinde.set_plan("customer_1", "plan_client")
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
    assert len(world.kinde.calls) - before <= 4, world.kinde.calls[before:]
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "duplicate"
    assert len(world.kinde.calls) == before


def test_a_user_event_reads_each_target_once(world: World) -> None:
    paying_org(world, "org_default", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_1", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    before = len(world.kinde.calls)
    handle_event(world.deps, user_updated("ev_u2", "kp_1"), OLD)
    reads = [c for c in world.kinde.calls[before:] if c.startswith("GET roles")]
    assert len(reads) == len(set(reads)), world.kinde.calls[before:]


# --- a left target Kinde refuses (a 4xx not in GONE) blocks every later pass of the customer ---


def test_a_left_target_kinde_refuses_does_not_block_the_customer_forever(world: World) -> None:
    from common.errors import PermanentError

    world.kinde.add_user("kp_1", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    # the first billing event carried a user id Kinde does not accept (e.g. a malformed or foreign id)
    original = world.kinde.user_roles

    def refuses(org: str, user: str) -> list[dict[str, Any]]:
        if user == "kp_bogus":
            raise PermanentError("Kinde answered 400 INVALID_USER_ID", reason="kinde_INVALID_USER_ID")
        return original(org, user)

    world.kinde.user_roles = refuses  # type: ignore[method-assign]
    with pytest.raises(PermanentError):
        handle_event(world.deps, billing("ev_0", "customer_1", user_id="kp_bogus"), OLD)
    link_customer(world.deps.parking, "customer_1", user_id="kp_1")  # on-call fixes the link
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")  # raises today, and at every later pass
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    world.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
