"""`rolesync status` for an adopting tenant: the fleet's ROLESYNC_MODE (a shadow fleet warns) and the hand grants."""

from __future__ import annotations

import time

import redis

from common.entitlements.manual_grants import HandGrant, RedisHandGrantStore
from ops.status import SHADOW_WARNING
from tests.ops.conftest import run_cli
from worker.runtime.heartbeat import beat


def test_status_shows_a_shadow_fleet_and_the_hand_grants_ending_soon(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    now = time.time()
    beat(client, "host:1", now, "fingerprint", "shadow")
    store = RedisHandGrantStore(client)
    store.put(HandGrant("hg_soon", "kp_1", "", ("role_client",), "trial", "ada", now, now + 3600), now)
    store.put(HandGrant("hg_open", "kp_2", "", ("role_client",), "staff", "ada", now), now)

    shown = run_cli({"REDIS_URL": redis_url}, "status")

    assert "mode: shadow (no role is written to Kinde)" in shown.output
    assert f"warning: {SHADOW_WARNING}" in " ".join(shown.output.split())
    assert "hand grants: 2 (1 ending within 7 days" in shown.output
    client.close()
