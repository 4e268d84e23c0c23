"""Messages queued before the rooms move (issue 25) still run after it: a queue filled by the pre-move code drains.

tests/worker/runtime/premove_queue/premove_queue.json holds Dramatiq's Redis keys as the pre-move main left them after
queueing one message per actor, each the way production queues it (the ingest's and the guard's hand-written
layout, Dramatiq's own enqueue, a retry waiting in a delay queue); premove_queue/capture.py says how it was made.
They go into a fresh Redis, and the moved worker (premove_queue/drain.py, a process of its own) runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from common import keys

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = Path(__file__).parent / "premove_queue" / "premove_queue.json"


def premove_keys() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["keys"]
    return found


def queued_calls() -> list[list[Any]]:
    """What each queued message asks: its actor, its args, its kwargs (from the bodies the old code wrote)."""
    bodies = [json.loads(body) for key in premove_keys().values() for body in key.get("hash", {}).values()]
    return sorted(([b["actor_name"], b["args"], b["kwargs"]] for b in bodies), key=json.dumps)


def load(client: redis.Redis, dump: dict[str, dict[str, Any]]) -> None:
    for key, value in dump.items():
        if "hash" in value:
            client.hset(key, mapping=value["hash"])
        elif "list" in value:
            client.rpush(key, *value["list"])


def test_the_fixture_holds_one_message_per_actor_of_every_queue() -> None:
    """Every actor the worker declares has a pre-move message, so a renamed actor or queue fails the drain."""
    actors = {call[0] for call in queued_calls()}
    assert actors == {"handle_event", "handle_bulk_event", "converge_customer", "converge_target", "rebuild_index",
                      "notify_app", "refresh_org_members"}  # fmt: skip
    assert any(key.endswith(".DQ") for key in premove_keys())


def test_a_queue_filled_before_the_move_drains_after_it(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    load(client, premove_keys())
    expected = queued_calls()
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    drain = [sys.executable, str(FIXTURE.parent / "drain.py"), str(len(expected))]
    done = subprocess.run(drain, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
    left = {key.decode(): client.type(key).decode() for key in client.scan_iter("dramatiq:*")}
    assert {key for key in left if not key.startswith("dramatiq:__heartbeats__")} == set()
    assert not list(client.scan_iter(f"{keys.DEAD_LETTERS}*")), "no message became a dead letter"
