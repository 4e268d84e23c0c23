"""A worker-side enqueue that returns only once `min_replicas` replicas hold the message.

Active only with `redis_min_replicas` > 0 (a Sentinel deployment). Replication is asynchronous, and
the worker often writes a replacement and then acks the original: the consumer's delay-queue move
(`ConsumerThread.handle_delayed_messages`: enqueue, then ack the delay-queue copy), a retry copy
(worker/runtime/durable_retries.py: enqueue, then ack the original), an actor's follow-up message. If the
enqueue reached only the old primary when it died, and the ack then went to the promoted replica,
which still held the original, the ack removed the only copy (seen once in nine runs of the chaos
Sentinel smoke). The ingest already waits for a replica per write (ingest/batching.py); this is the
worker's side of the same guard.

`WAIT` covers only the writes of the connection it is sent on, to the server that connection
reached: sent later on another pooled connection, or after a failover to the new primary, it proves
nothing about this enqueue. So the enqueue script and its `WAIT` go in one pipeline, one round trip
on one connection (redis-py resends the whole pipeline if that connection drops, so a resent enqueue
is again followed by its own `WAIT`). Fewer replicas than required raises `NotReplicatedError`, a
redis-py `ConnectionError`: every caller already treats that as Redis being away and does not ack
the original. The consumer thread's enqueue becomes Dramatiq's `ConnectionClosed` (worker/runtime/broker.py),
so the consumer restarts, the delay-queue copy stays unacked and comes back by worker/runtime/recovery/;
a retry copy stays owed and the ack waits for it (worker/runtime/durable_retries.py); an actor's follow-up
fails the pass, which is retried as a Redis outage. The enqueue itself may have landed anyway
(on the primary, replicated later or lost): the duplicate it may leave is harmless, as an event's
redelivery reads its generation back and a covered one makes no Kinde call (worker/events/coalesce.py).
"""

from __future__ import annotations

from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis


class NotReplicatedError(redis.ConnectionError):
    """The enqueue ran on the primary, but too few replicas acknowledged it: a failover could lose it."""


def wait_ms_for(socket_timeout_s: float) -> int:
    """WAIT's own timeout: half the socket timeout, so a slow replica is a reply, never a lost socket."""
    return max(1, int(socket_timeout_s * 1000 / 2))


def replicated_enqueue(
    broker: RedisBroker, queue_name: str, redis_message_id: str, data: bytes, *, min_replicas: int, wait_ms: int
) -> None:
    """Dramatiq's `do_enqueue`, plus `WAIT min_replicas wait_ms` on the same connection in one round trip."""
    pipe = broker.client.pipeline(transaction=False)
    # The arguments of Dramatiq's `RedisBroker._dispatch("enqueue")` (dramatiq/brokers/redis.py):
    # its closure calls the script on the broker's client, and a pipeline needs it called on the pipe.
    args: list[Any] = [
        "enqueue",
        current_millis(),
        queue_name,
        broker.broker_id,
        broker.heartbeat_timeout,
        broker.dead_message_ttl,
        broker._should_do_maintenance("enqueue"),
        broker._max_unpack_size(),  # type: ignore[no-untyped-call]
        redis_message_id,
        data,
    ]
    broker.scripts["dispatch"](keys=[broker.namespace], args=args, client=pipe)
    pipe.execute_command("WAIT", min_replicas, wait_ms)
    _, acked = pipe.execute()
    if int(acked) < min_replicas:
        raise NotReplicatedError(f"{acked} of {min_replicas} replica(s) acknowledged within {wait_ms} ms")
