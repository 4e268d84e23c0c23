"""Review of the table, notification and retry changes: sequences that broke a claim, each fixed here.

Real Redis (and real Postgres where the table is involved); Kinde is the recording fake of
tests/worker/fakes.py, as in the neighbouring tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.worker.conftest import World, build_world
from worker.handlers import converge_customer, handle_event

from .test_convergence import paying_org, personal, user_updated
from .test_handlers import OLD, billing

FEATURES = {"plan_subscriber": {"seats": 1}, "plan_client": {"seats": 5}}


def two_customers_at_one_target(world: World) -> None:
    """kp_1 in org_acme, covered by the org's customer and by the user's own customer there."""
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    handle_event(world.deps, billing("ev_b1", "customer_me", user_id="kp_1", org_code="org_acme"), OLD)


# --- 1. a reconcile pass of each covering customer, nothing changed: no webhook ---


def test_passes_of_two_covering_customers_that_change_nothing_send_no_webhook(redis_url: str) -> None:
    sent: list[dict[str, Any]] = []
    world = build_world(redis_url, notify=sent.append)
    two_customers_at_one_target(world)
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r0")
    converge_customer(world.deps, "customer_me", "reconcile", "msg_r1")
    before = len(sent)
    # Each pass lists the target's sources with its own customer last; the order is no change.
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r2")
    converge_customer(world.deps, "customer_me", "reconcile", "msg_r3")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r4")
    assert len(sent) == before, [s["body"] for s in sent[before:]]
