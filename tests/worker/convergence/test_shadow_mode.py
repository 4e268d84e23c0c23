"""Shadow mode: a pass runs as in live mode but writes no role; it records what it would write, and why.

Real Redis for every store, the recording fake for Kinde. Each test failed before shadow mode (the pass
wrote to Kinde, and nothing recorded a difference).
"""

from __future__ import annotations

import time

import pytest
import redis

from common.entitlements.manual_grants import HandGrant, RedisHandGrantStore
from common.entitlements.shadow_writes import NO_PLAN, RedisShadowLog, ShadowWrite
from ops.status import Status, alive_workers, fleet_mode, problems
from tests.worker.conftest import World, build_world
from tests.worker.events.test_handlers import OLD, user_created
from worker.events.handlers import converge_target, handle_event
from worker.runtime import metrics
from worker.runtime.heartbeat import beat


@pytest.fixture
def world(redis_url: str) -> World:
    found = build_world(redis_url, shadow=True)
    found.kinde.add_user("kp_1", "customer_1")
    found.kinde.held[("org_default", "kp_1")] = {found.kinde.roles_by_key["role_client"]}  # given by hand long ago
    found.kinde.set_plan("customer_1", "plan_subscriber")
    return found


def shadow_writes(world: World) -> list[ShadowWrite]:
    return RedisShadowLog(world.redis).all()


def test_a_shadow_pass_writes_no_role_and_records_what_it_would_write_and_why(world: World) -> None:
    before = {op: metrics.SHADOW_WRITES.labels(op)._value.get() for op in ("add", "remove")}

    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"

    assert world.kinde.writes() == []
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]
    (write,) = shadow_writes(world)
    assert (write.org_code, write.user_id, write.add, write.remove) == (
        "org_default", "kp_1", ("role_subscriber",), ("role_client",))  # fmt: skip
    assert write.why == {
        "role_subscriber": ["customer customer_1: plan plan_subscriber (plans.toml: plan_subscriber = "
                            "['role_subscriber'])"],
        "role_client": [NO_PLAN],
    }  # fmt: skip
    after = {op: metrics.SHADOW_WRITES.labels(op)._value.get() for op in ("add", "remove")}
    assert (after["add"] - before["add"], after["remove"] - before["remove"]) == (1, 1)
    assert world.deps.history is not None
    (entry,) = [e for e in world.deps.history.recent("customer_1") if e["kind"] == "shadow_pass"]
    assert (entry["would_add"], entry["would_remove"]) == (["kp_1:role_subscriber"], ["kp_1:role_client"])


def test_a_hand_grant_takes_the_role_off_the_removals_and_an_agreeing_target_drops_off(world: World) -> None:
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    RedisHandGrantStore(world.redis).put(HandGrant("hg_1", "kp_1", "", ("role_client",), "adopted", "ada", 0.0),
                                         time.time())  # fmt: skip

    converge_target(world.deps, "", "kp_1", "hand_grant")
    (write,) = shadow_writes(world)
    assert (write.add, write.remove) == (("role_subscriber",), ())

    world.kinde.held[("org_default", "kp_1")].add(world.kinde.roles_by_key["role_subscriber"])
    converge_target(world.deps, "", "kp_1", "hand_grant")
    assert shadow_writes(world) == []
    assert world.kinde.writes() == []


def test_status_says_the_fleets_mode_and_a_mixed_fleet_needs_a_human(world: World) -> None:
    client: redis.Redis = world.redis
    now = time.time()
    beat(client, "host:1", now, "fp", "shadow")
    assert fleet_mode(alive_workers(client, 60, now)) == "shadow"

    beat(client, "host:2", now, "fp", "live")
    workers = alive_workers(client, 60, now)
    assert fleet_mode(workers) == "mixed"
    status = Status([], {}, workers, None, 0, None, mode=fleet_mode(workers))
    assert any("ROLESYNC_MODE" in p for p in problems(status))
