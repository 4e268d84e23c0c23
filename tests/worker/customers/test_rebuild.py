"""The customer-index rebuild, in process: real Redis for its cursor, lease and links, a paging fake for Kinde.

The fake pages 2 rows at a time: 7 users are 4 pages, 3 orgs listed without billing 2 pages and 3
look-ups, so a whole run is 9 Kinde calls.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from common import keys
from common.errors import RateLimitedError
from common.infra.deadletters import TOO_OLD, UNRESOLVED, DeadLetter
from tests.worker.conftest import World, build_world
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.events.handlers import handle_event
from worker.kinde.api import Page

USERS, ORGS = 7, 3
RUN_CALLS = [f"GET /users page {t}" for t in (0, 2, 4, 6)] + [f"GET /organizations page {t}" for t in (0, 2)]
RUN_CALLS += [f"GET /organization org_{n}" for n in range(ORGS)]


def tenant(world: World) -> None:
    world.kinde.page_size = 2
    for n in range(USERS):
        world.kinde.add_user(f"kp_{n}", f"customer_u{n}")
        world.kinde.set_plan(f"customer_u{n}", "plan_client")
    for n in range(ORGS):
        world.kinde.orgs[f"org_{n}"] = {"code": f"org_{n}", "billing": {"billing_customer_id": f"customer_o{n}"}}


def rebuild_calls(world: World) -> list[str]:
    return [c for c in world.kinde.calls if c.startswith(("GET /users", "GET /organization"))]


def replayed(world: World) -> set[str]:
    return {claims["event_id"] for claims, meta, _ in world.enqueued if meta.get("replayed")}


def every_link(world: World) -> list[str]:
    expected = [f"customer_u{n}" for n in range(USERS)] + [f"customer_o{n}" for n in range(ORGS)]
    return sorted(expected)


def test_a_rebuild_learns_each_page_before_it_reads_the_next(world: World) -> None:
    tenant(world)
    known_when_read: dict[str | None, list[str]] = {}
    read = world.kinde.users_page

    def users_page(*, expand_billing: bool, next_token: str | None) -> Page:
        known_when_read[next_token] = world.deps.links.all_customer_ids()
        return read(expand_billing=expand_billing, next_token=next_token)

    world.kinde.users_page = users_page  # type: ignore[method-assign]
    assert handle_event(world.deps, billing("ev_1", "customer_u1"), OLD) == "parked"
    world.run_rebuilds()
    assert known_when_read["2"] == ["customer_u0", "customer_u1"]
    assert known_when_read["4"] == ["customer_u0", "customer_u1", "customer_u2", "customer_u3"]
    assert replayed(world) == {"ev_1"}
    assert world.dead_letters.get("ev_1") is None


def test_a_rebuild_cut_off_by_a_429_or_a_dead_chunk_resumes_from_its_cursor_reading_no_page_twice(world: World) -> None:
    tenant(world)
    read_page, look_up = world.kinde.users_page, world.kinde.get_organization
    refusals = {"GET /users page 4": RateLimitedError("429", retry_after_s=1.0), "org_1": RuntimeError("killed")}

    def users_page(*, expand_billing: bool, next_token: str | None) -> Page:
        if error := refusals.pop(f"GET /users page {next_token or 0}", None):
            raise error
        return read_page(expand_billing=expand_billing, next_token=next_token)

    def get_organization(org_code: str) -> dict[str, Any]:
        if error := refusals.pop(org_code, None):
            raise error
        return look_up(org_code)

    world.kinde.users_page = users_page  # type: ignore[method-assign]
    world.kinde.get_organization = get_organization  # type: ignore[method-assign]
    assert world.deps.resolver.request_rebuild({"received_at": time.time()})
    holder = world.rebuild_chunks[0]
    with pytest.raises(RateLimitedError):
        world.run_rebuilds()
    assert world.deps.links.all_customer_ids() == ["customer_u0", "customer_u1", "customer_u2", "customer_u3"]
    world.rebuild_chunks.append(holder)  # Dramatiq retries the same message after the cool-down
    with pytest.raises(RuntimeError):  # e.g. the process died: this chain is gone for good
        world.run_rebuilds()
    world.redis.delete(keys.REBUILD_LEASE)  # ...and its lease expired
    assert world.deps.resolver.request_rebuild({"received_at": 0.0})  # the next unknown customer restarts it
    world.run_rebuilds()
    assert world.deps.links.all_customer_ids() == every_link(world)
    assert Counter(rebuild_calls(world)) == Counter(RUN_CALLS)  # each page and look-up exactly once


def test_a_rebuild_is_cut_in_chunks_that_each_send_the_next(redis_url: str) -> None:
    world = build_world(redis_url, chunk_s=0.0)  # one Kinde call per chunk: far from any actor time limit
    tenant(world)
    assert world.deps.resolver.request_rebuild({"received_at": time.time()})
    assert world.run_rebuilds() == len(RUN_CALLS)
    assert world.deps.links.all_customer_ids() == every_link(world)
    assert Counter(rebuild_calls(world)) == Counter(RUN_CALLS)


def test_unknown_customers_received_before_a_rebuild_began_share_it(world: World) -> None:
    tenant(world)
    for n in (1, 5):
        assert handle_event(world.deps, billing(f"ev_{n}", f"customer_u{n}"), OLD) == "parked"
    assert len(world.rebuild_chunks) == 1
    world.run_rebuilds()
    assert Counter(rebuild_calls(world)) == Counter(RUN_CALLS)
    assert replayed(world) == {"ev_1", "ev_5"}
    assert handle_event(world.deps, billing("ev_ghost", "customer_ghost"), OLD) == "parked"
    assert world.rebuild_chunks == []  # received before the last rebuild began: that rebuild covered it


def test_a_customer_first_seen_after_the_last_rebuild_began_starts_one_at_once(world: World) -> None:
    tenant(world)
    world.deps.resolver.request_rebuild({"received_at": time.time()})
    world.run_rebuilds()
    world.kinde.add_user("kp_new", "customer_new")
    received = time.time()
    later = replace(world.deps, clock=lambda: received + 10)  # past the grace for its user.created
    assert handle_event(later, billing("ev_new", "customer_new"), {"received_at": received}) == "parked"
    assert len(world.rebuild_chunks) == 1  # not after an interval: now
    world.run_rebuilds()
    assert replayed(world) == {"ev_new"}
    assert rebuild_calls(world).count("GET /users page 0") == 2


def test_requests_during_a_run_coalesce_into_one_more_run_after_it(redis_url: str) -> None:
    world = build_world(redis_url, chunk_s=0.0)
    tenant(world)
    assert world.deps.resolver.request_rebuild({"received_at": time.time()})
    world.deps.resolver.rebuilds.run_chunk(world.rebuild_chunks.pop(0))  # the run is under way
    for _ in range(5):  # customers received after it began: it cannot cover them
        assert not world.deps.resolver.request_rebuild({"received_at": time.time()})
    world.run_rebuilds()
    assert rebuild_calls(world).count("GET /users page 0") == 2
    assert world.redis.get(keys.REBUILD_CURSOR) is None
    assert world.redis.get(keys.REBUILD_LEASE) is None


def test_events_parked_or_aged_out_days_ago_are_replayed_as_fresh_messages_when_the_link_appears(
    world: World,
) -> None:
    days_ago = time.time() - 3 * 86400
    for event_id, reason in (("ev_parked", UNRESOLVED), ("ev_aged", TOO_OLD)):
        claims = billing(event_id, "customer_z")
        record = DeadLetter(event_id, claims, reason, "", 1, days_ago, days_ago, "customer_z", claims["type"])
        world.dead_letters.put(record)
    world.kinde.add_user("kp_z", "customer_z")
    world.kinde.set_plan("customer_z", "plan_client")
    assert handle_event(world.deps, user_created("ev_uz", "kp_z"), OLD) == "converged"
    assert replayed(world) == {"ev_parked", "ev_aged"}
    assert world.dead_letters.of_customer("customer_z") == []
    for claims, meta, delay in world.enqueued:
        assert delay == 0
        assert meta["received_at"] > time.time() - 60  # a fresh message, not the old one
        assert handle_event(world.deps, claims, meta) in ("converged", "duplicate")
    assert world.kinde.role_keys("org_default", "kp_z") == ["role_client"]


def test_dry_run_discovery_walks_every_page_and_learns_nothing(world: World) -> None:
    tenant(world)
    found = world.deps.resolver.discover()
    assert sorted(link.customer_id for link in found) == every_link(world)
    assert world.deps.links.all_customer_ids() == []
    assert world.redis.get(keys.REBUILD_CURSOR) is None
