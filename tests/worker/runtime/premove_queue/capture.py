"""How premove_queue.json was made: the PRE-MOVE code (main at 116638f, before issue 25's rooms move) fills a
fresh Redis with one message per actor, the way each is queued in production, and this dumps Dramatiq's keys.

Run from a checkout of the pre-move tree, with the venv of the project:

    git worktree add --detach /tmp/premove 116638f
    cd /tmp/premove && PYTHONPATH=/tmp/premove /path/to/.venv/bin/python \\
        /path/to/tests/worker/runtime/premove_queue/capture.py \\
        > /path/to/tests/worker/runtime/premove_queue/premove_queue.json

It imports the old module names on purpose, so devtools/rooms.py never rewrites it (its SKIP list).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import redis
import redis.asyncio

from common.embedded_redis import EmbeddedRedis
from common.messages import converge_message, converge_target_message, event_message, notify_message, rebuild_message

USER_CREATED = {"type": "user.created", "event_id": "evt_premove_user", "data": {"user": {"id": "kp_premove"}}}
PLAN_CHANGED = {
    "type": "customer.plan_assigned",
    "event_id": "evt_premove_bulk",
    "data": {"customer_id": "customer_premove", "plan_code": "pro"},
}
NOTIFICATION = {"type": "entitlements.updated", "org_code": "org_premove", "user_id": "kp_premove", "plans": ["pro"]}


async def through_the_ingest_and_the_api(url: str) -> None:
    """The two producers that write Dramatiq's layout by hand: the ingest's Lua enqueue and the guard's ask."""
    from api.guard_store import RedisGuardStore
    from ingest.enqueue import RedisEventQueue

    client = redis.asyncio.Redis.from_url(url)
    queue = RedisEventQueue(client, dedupe_ttl_s=3600)
    assert await queue.enqueue_once(USER_CREATED, "msg_premove_user", 1_760_000_000.0)
    await queue.aclose()
    assert await RedisGuardStore(client).ask_refresh("org_premove", 60)
    await client.aclose()


def main() -> None:
    with EmbeddedRedis() as server:
        os.environ["REDIS_URL"] = server.url
        from worker import broker as broker_module

        broker = broker_module.setup()
        from worker import actors  # noqa: F401  (binds the actors to this broker, as the worker does)

        asyncio.run(through_the_ingest_and_the_api(server.url))
        broker.enqueue(event_message(PLAN_CHANGED, "msg_premove_bulk", 1_760_000_001.0, bulk=True))  # replay, burst
        broker.enqueue(converge_message("customer_premove", "reconcile"))
        broker.enqueue(converge_message("customer_premove_retry", "reconcile"), delay=1)  # a retry in the DQ
        broker.enqueue(converge_target_message("org_premove", "kp_premove", "hand_grant"))
        broker.enqueue(rebuild_message("holder_premove"))
        broker.enqueue(notify_message(NOTIFICATION))
        client = redis.Redis.from_url(server.url)
        dump: dict[str, object] = {}
        for key in sorted(client.scan_iter("dramatiq:*")):
            if b"__" in key:  # the capturing broker's own heartbeat: not a message
                continue
            kind = client.type(key).decode()
            if kind == "hash":
                dump[key.decode()] = {"hash": {k.decode(): v.decode() for k, v in client.hgetall(key).items()}}
            elif kind == "list":
                dump[key.decode()] = {"list": [v.decode() for v in client.lrange(key, 0, -1)]}
            elif kind == "zset":
                dump[key.decode()] = {"zset": {m.decode(): s for m, s in client.zrange(key, 0, -1, withscores=True)}}
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        made = f"made by tests/worker/runtime/premove_queue/capture.py from the pre-move tree at {commit.strip()}"
        print(json.dumps({"made_by": made, "keys": dump}, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
