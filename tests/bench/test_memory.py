"""`python -m bench memory`'s counting, on real Redis: keys grouped by shape, per customer, and the
dedupe keys' expiry simulated by deleting what would expire within the dedupe TTL."""

from __future__ import annotations

import redis

from bench.memory import expire_dedupe, measure, shape


def test_ids_become_placeholders_so_each_store_is_one_shape() -> None:
    assert shape("rolesync:snapshots:kp_0a1b2c") == "rolesync:snapshots:{user}"
    assert shape("rolesync:event-gen:event_01HX9:customer_7f3") == "rolesync:event-gen:{id}:{customer}"
    assert shape("rolesync:target-written:org_default|kp_9") == "rolesync:target-written:{org}|{user}"
    assert shape("rolesync:ingest:billing-burst:1796430948") == "rolesync:ingest:billing-burst:{n}"


def test_bytes_and_keys_per_customer_by_shape_with_fleet_wide_keys_apart(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    for n in range(20):
        r.set(f"rolesync:link:customer_{n}", "x" * 100)
        r.set(f"rolesync:seen:event_{n}", "1", ex=3600)
    r.set("rolesync:kinde:roles", "y" * 1000)
    held = measure(r, customers=20)
    assert held["keys_per_customer"] == 2.0
    assert set(held["by_shape"]) == {"rolesync:link:{customer}", "rolesync:seen:{id}"}
    link_bytes, link_keys = held["by_shape"]["rolesync:link:{customer}"]
    assert (link_keys, link_bytes > 100) == (1.0, True)
    assert held["fleet_wide"]["keys"] == 1
    assert expire_dedupe(r, dedupe_ttl_s=72 * 3600) == ["rolesync:seen:{id}"]
    after = measure(r, customers=20)
    assert (after["keys_per_customer"], list(after["by_shape"])) == (1.0, ["rolesync:link:{customer}"])
