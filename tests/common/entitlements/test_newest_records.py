"""The grant and entitlement records share one Redis adapter (common/entitlements/newest_records.py, issue 25
item 8): the same newest-wins answers for both, each under its own key, and the grant put's leaving set kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from common import keys
from common.entitlements.customer import Entitlements, RedisEntitlementStore
from common.entitlements.grants import Grants, RedisGrantStore, Target
from common.entitlements.newest_records import RedisNewestRecords

pytestmark = pytest.mark.integration


def grants(generation: int, read_at: float, *targets: Target) -> Grants:
    return Grants("c1", ("pro",), frozenset({"pro"}), targets, generation, read_at)


def entitlements(generation: int, read_at: float) -> Entitlements:
    return Entitlements("c1", "digest", (), (), generation, read_at)


# (the store, a record of a generation read at a time, the key it lives under)
Store = Callable[[redis.Redis], RedisNewestRecords[Any]]
STORES: dict[str, tuple[Store, Callable[[int, float], Any], str]] = {
    "grants": (RedisGrantStore, grants, keys.customer_grants("c1")),
    "entitlements": (RedisEntitlementStore, entitlements, keys.customer_entitlements("c1")),
}


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    found = redis.Redis.from_url(redis_url, decode_responses=True)
    found.delete(*(key for _, _, key in STORES.values()), keys.customer_leaving("c1"))
    return found


@pytest.mark.parametrize("kind", sorted(STORES))
def test_both_records_keep_the_newest_alike(kind: str, client: redis.Redis) -> None:
    build, record, key = STORES[kind]
    store = build(client)
    answers = [
        store.put(record(2, 5.0)),
        store.put(record(1, 9.0)),
        store.put(record(2, 4.0)),
        store.put(record(2, 6.0)),
    ]
    assert answers == [True, False, False, True]  # older generation, same one read earlier: kept out
    assert store.get("c1") == record(2, 6.0)
    assert client.exists(key) == 1
    assert store.get_many(["c1", "c2"]) == {"c1": record(2, 6.0)}
    assert store.get_many([]) == {}


def test_a_grant_put_still_sends_dropped_targets_to_the_leaving_set(client: redis.Redis) -> None:
    store = RedisGrantStore(client)
    a, b = Target("org_a", "kp_1"), Target("org_b", "kp_1")
    store.put(grants(1, 1.0, a, b))
    assert store.put(grants(2, 2.0, a))
    assert store.leaving("c1") == [b]
