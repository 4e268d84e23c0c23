"""Lua run by more than one module lives in one `.lua` file that every caller loads (issue 25, item 6).

The callers must register the very same script (one SHA), no Python file may hold an inline copy, and the wheel
must ship every `.lua` file (pyproject's package-data), or an installed service could not load them.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import tomllib
from pathlib import Path

import redis
import redis.asyncio

from api.guard_store import RedisGuardStore
from common import keys
from common.customers.history import CAP, RedisHistory
from common.guard import selection_log
from common.guard.usage import RedisUsageStore
from common.infra.lua_scripts import lua_script
from common.plans.fleet_mapping import MappingStore
from worker.convergence.lease import RedisLeases

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ("common", "api", "ingest", "worker", "ops", "doctor", "cli", "console")
# A line each script's body has, which an inline copy would repeat.
SIGNATURES = {
    "keep_newer.lua": "cjson.decode(old)['at']",
    "compare_and_delete.lua": "return redis.call('DEL', KEYS[1])",
    "capped_push.lua": "redis.call('LTRIM'",
}


def test_the_usage_store_and_the_guard_store_run_the_one_keep_newer_script() -> None:
    text = lua_script("common.guard", "keep_newer.lua")
    usage = RedisUsageStore(redis.Redis())._keep
    guard = RedisGuardStore(redis.asyncio.Redis())._keep
    assert usage.script == guard.script == text
    assert usage.sha == guard.sha


def test_the_lease_and_the_sweep_lock_release_with_the_one_compare_and_delete_script() -> None:
    text = lua_script("common.infra", "compare_and_delete.lua")
    lease = RedisLeases(redis.Redis(), ttl_ms=1000, poll_s=0.1, retry_after_s=1.0)._release
    mapping = MappingStore(redis.Redis())._release
    assert lease.script == mapping.script == text
    assert lease.sha == mapping.sha


def test_the_timeline_and_the_plan_selection_log_push_with_the_one_capped_push_script() -> None:
    text = lua_script("common.customers", "capped_push.lua")
    timeline = RedisHistory(redis.Redis(), ttl_s=60)._push
    selections = RedisGuardStore(redis.asyncio.Redis())._note
    assert timeline.script == selections.script == text
    assert timeline.sha == selections.sha


def test_capped_push_keeps_each_list_s_cap_and_ttl(redis_url: str) -> None:
    """The timeline expires and keeps CAP entries, newest first; a customer's decisions expire, the fleet's never."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    history = RedisHistory(client, ttl_s=600)
    for n in range(CAP + 3):
        history.add("cus_capped", {"kind": "test", "n": n})
    assert [e["n"] for e in history.recent("cus_capped")] == list(range(CAP + 2, 2, -1))
    assert 590 < client.ttl(keys.customer_history("cus_capped")) <= 600

    async def note() -> None:
        store = RedisGuardStore(redis.asyncio.Redis.from_url(redis_url))
        await store.note("cus_capped", {"kind": "allowed"}, 300)
        await store._redis.aclose()

    asyncio.run(note())
    own = client.lrange(keys.customer_plan_selections("cus_capped"), 0, -1)
    assert [json.loads(e) for e in own] == [{"kind": "allowed"}]
    assert 290 < client.ttl(keys.customer_plan_selections("cus_capped")) <= 300
    assert json.loads(client.lindex(keys.PLAN_SELECTIONS, 0) or "{}")["customer_id"] == "cus_capped"
    assert client.ttl(keys.PLAN_SELECTIONS) == -1
    assert client.llen(keys.PLAN_SELECTIONS) <= selection_log.FLEET_CAP


def test_no_python_file_holds_an_inline_copy_of_a_lua_file() -> None:
    copies = [
        f"{path.relative_to(ROOT)}: {name}"
        for top in SERVICE
        for path in sorted((ROOT / top).rglob("*.py"))
        for name, line in SIGNATURES.items()
        if line in path.read_text(encoding="utf-8")
    ]
    assert copies == []


def test_the_wheel_ships_every_lua_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data: dict[str, list[str]] = project["tool"]["setuptools"]["package-data"]
    files = sorted(p.relative_to(ROOT) for top in SERVICE for p in (ROOT / top).rglob("*.lua"))
    assert {f.name for f in files} >= set(SIGNATURES)
    unshipped = [
        str(f)
        for f in files
        if not any(fnmatch.fnmatch(f.name, pattern) for pattern in package_data.get(".".join(f.parent.parts), []))
    ]
    assert unshipped == []
