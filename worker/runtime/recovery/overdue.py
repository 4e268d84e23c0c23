"""Delayed messages stuck in a *live* worker's ack set past their eta, put back on their delay queue.

Part 3 of recovery (worker/runtime/recovery/__init__.py), run by each sweep.

A worker's DQ consumer holds delayed messages (every retry, every settling billing event) in
memory while their ids sit in its ack set. When its Redis connection breaks, Dramatiq's consumer
drops that in-memory delay queue (`ConsumerThread.run`, on BrokerConnectionError) and a DQ move
whose enqueue fails is dropped too, but the ids stay in the ack set. The worker's heartbeat keeps
it "alive", so maintenance never returns them: the events wait until that process exits
(docs/stack-notes.md, Crash recovery; found by `python -m chaos redis`, docs/reliability.md).
A consumer that restarts returns its own (worker/runtime/recovery/own_acks.py); this is the net for any
other way a live worker keeps one.

The eta is in the message itself, so a stuck entry is recognisable: one whose eta passed more
than `grace_s` ago, long after a healthy DQ consumer (which moves due messages within about a
second) would have moved and acked it. Requeueing it onto the DQ list lets any worker fetch it;
if its holder did still have it, the result is a duplicate, which the coalescer absorbs.
"""

from __future__ import annotations

import json
import time

import redis
import structlog

from common import keys

log = structlog.get_logger(__name__)

# KEYS: ack set, DQ messages hash, DQ list. ARGV: redis message id. Same steps as Dramatiq's
# `requeue` command, for an ack set that is not the caller's own.
_REQUEUE = """
if redis.call('SREM', KEYS[1], ARGV[1]) > 0 and redis.call('HEXISTS', KEYS[2], ARGV[1]) > 0 then
  redis.call('RPUSH', KEYS[3], ARGV[1])
  return 1
end
return 0
"""


def requeue_overdue(client: redis.Redis, queue: str, grace_s: float, now: float | None = None) -> int:
    """Put back every delayed message of `queue` overdue by more than `grace_s`; return how many."""
    cutoff_ms = ((now if now is not None else time.time()) - grace_s) * 1000
    requeue = client.register_script(_REQUEUE)
    moved = 0
    for ack_set in client.scan_iter(keys.ack_sets_pattern(f"{queue}.DQ")):
        for message_id in _overdue(client, ack_set, queue, cutoff_ms):
            script_keys = [ack_set, keys.delay_queue_messages(queue), keys.delay_queue_list(queue)]
            moved += int(requeue(keys=script_keys, args=[message_id]))
    if moved:
        log.warning("stranded_messages_requeued", queue=queue, count=moved)
    return moved


def _overdue(client: redis.Redis, ack_set: bytes | str, queue: str, cutoff_ms: float) -> list[bytes | str]:
    ids = list(client.smembers(ack_set))
    bodies = client.hmget(keys.delay_queue_messages(queue), ids) if ids else []
    return [i for i, body in zip(ids, bodies, strict=True) if body is not None and _eta(body) < cutoff_ms]


def _eta(body: bytes | str) -> float:
    try:
        return float(json.loads(body)["options"]["eta"])
    except (ValueError, KeyError, TypeError):
        return float("inf")  # no readable eta: never judged stuck
