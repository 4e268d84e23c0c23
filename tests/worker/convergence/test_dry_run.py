"""The dry run: a pass that writes nothing real, not to Kinde nor to the worker's own Redis state."""

from __future__ import annotations

from typing import Any

from common import keys
from tests.worker.conftest import World
from tests.worker.convergence.test_convergence import paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD
from worker.customers.park import link_customer
from worker.events.handlers import handle_event

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
