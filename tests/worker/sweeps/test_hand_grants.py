"""Hand grants cover their target like a customer: the union rule holds for them, and they end by themselves.

Real Redis for every store, the recording fake for Kinde, a clock the test moves. Each test failed
before hand grants joined the union in worker/convergence/targets.py (the pass removed every managed role no
plan granted).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from common.entitlements.manual_grants import HandGrant, RedisHandGrantStore
from common.entitlements.snapshots import RedisSnapshotStore
from common.settings import Settings
from common.table.table_rows import row_of
from tests.ingest.servers import serving
from tests.worker.conftest import World, build_world
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.events.handlers import converge_target, handle_event
from worker.outputs.notify import notification
from worker.sweeps.grant_schedule import GrantSchedule

NOW = 1_900_000_000.0


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(redis_url: str, clock: Clock) -> World:
    return build_world(redis_url, clock=clock)


def grant(grant_id: str, user_id: str, *roles: str, until: float | None = None, org: str = "") -> HandGrant:
    return HandGrant(grant_id, user_id, org, roles, "partner", "ada", NOW - 10, until)


def given_by_hand(world: World, user_id: str, role: str, org: str = "org_default") -> None:
    world.kinde.held.setdefault((org, user_id), set()).add(world.kinde.roles_by_key[role])


def schedule(world: World, clock: Clock, queued: list[tuple[str, str, str]]) -> GrantSchedule:
    store = RedisHandGrantStore(world.redis)
    return GrantSchedule(store, lambda o, u, r: queued.append((o, u, r)), None, clock=clock)


def test_a_pass_keeps_a_managed_role_a_hand_grant_gives_and_no_plan_does(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    given_by_hand(world, "kp_1", "role_client")
    RedisHandGrantStore(world.redis).put(grant("hg_1", "kp_1", "role_client"), NOW)
    world.kinde.set_plan("customer_1", "plan_subscriber")

    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"

    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client", "role_subscriber"]
    (snapshot,) = RedisSnapshotStore(world.redis).of_user("kp_1")
    assert snapshot.to_dict()["granted_by"] == {
        "role_client": [{"grant": "hg_1", "reason": "partner"}],
        "role_subscriber": [{"customer": "customer_1"}],
    }


def test_an_upgrade_of_a_user_who_also_holds_a_grant_keeps_the_grants_role(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    RedisHandGrantStore(world.redis).put(grant("hg_1", "kp_1", "role_subscriber"), NOW)

    world.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(world.deps, billing("ev_up", "customer_1", "customer.plan_changed"), OLD) == "converged"

    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client", "role_subscriber"]


def test_adding_a_grant_converges_its_target_without_any_event(world: World, clock: Clock) -> None:
    world.kinde.add_user("kp_1", None)
    queued: list[tuple[str, str, str]] = []
    RedisHandGrantStore(world.redis).put(grant("hg_1", "kp_1", "role_client"), NOW)

    assert schedule(world, clock, queued).tick() == 1
    for org, user, reason in queued:
        assert converge_target(world.deps, org, user, reason) == "converged"

    assert queued == [("", "kp_1", "hand_grant")]  # "" = the B2C org, resolved by the worker
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]
    assert schedule(world, clock, queued).tick() == 0  # done: not queued again


def test_a_grant_ends_by_itself_at_until_within_one_scheduled_tick(world: World, clock: Clock) -> None:
    world.kinde.add_user("kp_1", None)
    store, queued = RedisHandGrantStore(world.redis), []
    store.put(grant("hg_1", "kp_1", "role_client", until=NOW + 60), NOW)
    ticks = schedule(world, clock, queued)
    ticks.tick()
    converge_target(world.deps, "", "kp_1", "hand_grant")
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]

    clock.now = NOW + 61
    queued.clear()
    ticks.tick()

    assert store.get("hg_1") is None
    assert queued == [("", "kp_1", "hand_grant")]
    converge_target(world.deps, "", "kp_1", "hand_grant")
    assert world.kinde.role_keys("org_default", "kp_1") == []


def test_a_grant_past_its_until_gives_nothing_even_before_the_schedule_ends_it(world: World, clock: Clock) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    given_by_hand(world, "kp_1", "role_client")
    RedisHandGrantStore(world.redis).put(grant("hg_1", "kp_1", "role_client", until=NOW + 60), NOW)
    clock.now = NOW + 61

    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"

    assert world.kinde.role_keys("org_default", "kp_1") == []


def test_a_grant_in_another_org_does_not_cover_the_users_default_org_target(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    given_by_hand(world, "kp_1", "role_client")
    RedisHandGrantStore(world.redis).put(grant("hg_1", "kp_1", "role_client", org="org_other"), NOW)

    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"

    assert world.kinde.role_keys("org_default", "kp_1") == []


def test_removing_a_grant_lets_the_next_pass_take_its_role(world: World, clock: Clock) -> None:
    world.kinde.add_user("kp_1", None)
    store, queued = RedisHandGrantStore(world.redis), []
    store.put(grant("hg_1", "kp_1", "role_client"), NOW)
    schedule(world, clock, queued).tick()
    converge_target(world.deps, "", "kp_1", "hand_grant")

    removed = store.remove("hg_1", NOW + 1)
    clock.now = NOW + 1
    schedule(world, clock, queued).tick()
    converge_target(world.deps, "", "kp_1", "hand_grant")

    assert removed is not None
    assert removed.grant_id == "hg_1"
    assert world.kinde.role_keys("org_default", "kp_1") == []
    assert RedisSnapshotStore(world.redis).of_user("kp_1")[0].by_hand == ()


def test_the_postgres_row_the_notification_and_the_read_api_carry_the_grant_as_granted_by(
    world: World, redis_url: str
) -> None:
    world.kinde.add_user("kp_1", None)
    RedisHandGrantStore(world.redis).put(grant("hg_1", "kp_1", "role_client", until=NOW + 600), NOW)
    converge_target(world.deps, "", "kp_1", "hand_grant")
    (snapshot,) = RedisSnapshotStore(world.redis).of_user("kp_1")

    row = row_of(snapshot, lambda _: {})
    sent = json.loads(notification(snapshot.target, snapshot, NOW)["body"])["data"]

    given = {"granted_by": {"grant": "hg_1", "reason": "partner"}, "roles": ["role_client"], "by": "ada",
             "until": NOW + 600}  # fmt: skip
    assert row is not None
    assert (row.roles, row.hand_grants) == (["role_client"], [given])
    assert sent["hand_grants"] == [given]
    assert sent["granted_by"] == {"role_client": [{"grant": "hg_1", "reason": "partner"}]}
    (read,) = read_api_targets(redis_url, "kp_1")  # the read API, over real HTTP, from the same snapshot
    assert (read["roles"], read["hand_grants"], read["granted_by"]) == (["role_client"], [given],
                                                                        sent["granted_by"])  # fmt: skip


def read_api_targets(redis_url: str, user_id: str) -> list[dict[str, Any]]:
    key = secrets.token_urlsafe(32)
    settings = Settings.from_env({"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"app:{key}:users"})
    with serving(create_app(settings)) as url:
        answer = httpx.get(f"{url}/v1/users/{user_id}/entitlements", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["organizations"]
    return found


def test_a_deleted_user_or_org_takes_its_hand_grants_with_it(world: World) -> None:
    store = RedisHandGrantStore(world.redis)
    store.put(grant("hg_user", "kp_1", "role_client"), NOW)
    store.put(grant("hg_org", "kp_2", "role_client", org="org_gone"), NOW)
    store.put(grant("hg_kept", "kp_2", "role_client"), NOW)

    handle_event(world.deps, {"type": "user.deleted", "event_id": "ev_d", "data": {"user": {"id": "kp_1"}}}, OLD)
    handle_event(world.deps, {"type": "organization.deleted", "event_id": "ev_o",
                              "data": {"organization": {"code": "org_gone"}}}, OLD)  # fmt: skip

    assert [g.grant_id for g in store.listed()] == ["hg_kept"]
