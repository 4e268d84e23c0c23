"""The guard's org member cache: a listing fills it, user events keep it up, deletions take members out."""

from __future__ import annotations

from common.errors import RetryableError
from common.guard.members import RedisMemberCache
from tests.worker.conftest import World
from tests.worker.events.test_handlers import OLD, user_created
from worker.convergence.members import refresh_members
from worker.events.handlers import handle_event


def cache(world: World) -> RedisMemberCache:
    assert isinstance(world.deps.members, RedisMemberCache)
    return world.deps.members


def test_a_listing_fills_the_count_and_is_dated(world: World) -> None:
    for user in ("kp_a", "kp_b", "kp_c"):
        world.kinde.add_user(user, None, org="org_acme")
    assert cache(world).count("org_acme") is None  # never listed: no count to trust
    assert refresh_members(world.kinde, cache(world), "org_acme", clock=lambda: 1234.5) == "members_refreshed"
    found = cache(world).count("org_acme")
    assert found is not None
    assert (found.count, found.read_at) == (3, 1234.5)
    world.kinde.members["org_acme"].remove("kp_b")
    refresh_members(world.kinde, cache(world), "org_acme")
    assert cache(world).count("org_acme").count == 2  # type: ignore[union-attr]


def test_an_org_customers_pass_counts_its_members_with_no_call_of_its_own(world: World) -> None:
    world.kinde.orgs["org_acme"] = {"code": "org_acme", "billing": {"billing_customer_id": "customer_acme"}}
    for user in ("kp_a", "kp_b"):
        world.kinde.add_user(user, None, org="org_acme")
    world.kinde.set_plan("customer_acme", "plan_client")
    org_event = {"type": "organization.created", "event_id": "ev_o", "data": {"organization": {"code": "org_acme"}}}
    handle_event(world.deps, org_event, OLD)
    assert cache(world).count("org_acme").count == 2  # type: ignore[union-attr]
    assert world.kinde.calls.count("GET /organizations/org_acme/users") == 1  # the pass's own listing


def test_user_events_add_and_remove_a_member_between_listings(world: World) -> None:
    world.kinde.add_user("kp_a", None, org="org_acme")
    refresh_members(world.kinde, cache(world), "org_acme")
    world.kinde.add_user("kp_new", None, org="org_acme")
    handle_event(world.deps, user_created("ev_new", "kp_new"), OLD)
    assert cache(world).count("org_acme").count == 2  # type: ignore[union-attr]
    world.kinde.users["kp_new"]["organizations"] = ["org_other"]  # moved: Kinde sends user.updated
    handle_event(world.deps, {**user_created("ev_moved", "kp_new"), "type": "user.updated"}, OLD)
    assert cache(world).count("org_acme").count == 1  # type: ignore[union-attr]
    deleted = {"type": "user.deleted", "event_id": "ev_del", "data": {"user": {"id": "kp_a"}}}
    handle_event(world.deps, deleted, OLD)
    assert cache(world).count("org_acme").count == 0  # type: ignore[union-attr]


def test_a_deleted_org_has_no_count_left(world: World) -> None:
    world.kinde.add_user("kp_a", None, org="org_acme")
    refresh_members(world.kinde, cache(world), "org_acme")
    handle_event(world.deps, {"type": "organization.deleted", "event_id": "ev_od", "data": {"code": "org_acme"}}, OLD)
    assert cache(world).count("org_acme") is None


def test_a_failed_listing_keeps_the_old_count_and_raises_nothing(world: World) -> None:
    world.kinde.add_user("kp_a", None, org="org_acme")
    refresh_members(world.kinde, cache(world), "org_acme", clock=lambda: 10.0)

    def down(org_code: str) -> None:
        raise RetryableError("Kinde timed out", reason="kinde_timeout")

    world.kinde.org_members = down  # type: ignore[assignment,method-assign]
    assert refresh_members(world.kinde, cache(world), "org_acme") == "members_unavailable"
    found = cache(world).count("org_acme")
    assert found is not None
    assert (found.count, found.read_at) == (1, 10.0)


def test_a_redis_failure_while_caching_is_dropped_not_raised(world: World) -> None:
    """A raise would become a dead letter (the actor has no retries): the next decision asks again."""
    world.kinde.add_user("kp_a", None, org="org_acme")

    def redis_down(*args: object, **kwargs: object) -> int:
        raise RetryableError("redis unavailable while caching an org's members", reason="redis")

    cached = cache(world)
    cached.replace = redis_down  # type: ignore[method-assign]
    assert refresh_members(world.kinde, cached, "org_acme") == "members_unavailable"


def test_a_request_queued_before_the_last_listing_is_skipped(world: World) -> None:
    world.kinde.add_user("kp_a", None, org="org_acme")
    refresh_members(world.kinde, cache(world), "org_acme", clock=lambda: 100.0)
    world.kinde.calls.clear()
    assert refresh_members(world.kinde, cache(world), "org_acme", asked_at=99.0) == "already_fresh"
    assert world.kinde.calls == []
    assert refresh_members(world.kinde, cache(world), "org_acme", asked_at=101.0) == "members_refreshed"
