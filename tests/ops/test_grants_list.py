"""`rolesync grants list`: who holds what by hand, from a real Redis, in-process (no Kinde needed to read)."""

from __future__ import annotations

import json
import time

import redis

from common.entitlements.manual_grants import HandGrant, RedisHandGrantStore
from tests.ops.conftest import run_cli

DAY = 24 * 3600.0


def test_list_shows_every_grant_soonest_ending_first_and_expiring_within_keeps_only_those_ending_by_then(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    now = time.time()
    store = RedisHandGrantStore(client)
    store.put(HandGrant("hg_month", "kp_1", "", ("role_client",), "partner", "ada", now, now + 30 * DAY), now)
    store.put(HandGrant("hg_soon", "kp_2", "org_acme", ("role_client",), "comp, ticket 812", "bo", now, now + DAY), now)
    store.put(HandGrant("hg_open", "kp_3", "", ("role_subscriber",), "staff", "ada", now), now)
    client.close()
    env = {"REDIS_URL": redis_url}

    everything = run_cli(env, "grants", "list")
    soon = run_cli(env, "grants", "list", "--expiring-within", "7d", "--json")
    none_soon = run_cli(env, "grants", "list", "--expiring-within", "1h")

    lines = everything.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["hg_soon", "hg_month", "hg_open"]
    assert lines[0].startswith("hg_soon  kp_2  org_acme  role_client  until ")
    assert lines[0].endswith("by bo: comp, ticket 812")
    assert lines[2].endswith("no end  by ada: staff")
    assert [(g["grant_id"], g["user_id"]) for g in json.loads(soon.stdout)["grants"]] == [("hg_soon", "kp_2")]
    assert none_soon.stdout == "No hand grants ending within 1h.\n"
