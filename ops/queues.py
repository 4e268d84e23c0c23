"""The Dramatiq queues as Redis holds them (layout: common/keys.py, docs/stack-notes.md, Dramatiq's Redis layout).

The counts are the autoscaler's (worker/runtime/backlog.py read_backlog, the one count); this adds the age.

* waiting: the queue list; its head is the oldest message (FIFO), whose `message_timestamp` (ms)
  gives the age of the backlog.
* in flight: ids fetched by a worker and not yet acked, in every broker's ack set for the queue
  (this includes a worker's small prefetch).
* delayed: retries and re-checks waiting for their time, in the `.DQ` list or already held in a
  worker's memory (its `.DQ` ack set).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from common import keys
from common.infra.connections import redis_errors
from worker.runtime.backlog import read_backlog


@dataclass(frozen=True)
class QueueStats:
    name: str
    waiting: int
    oldest_age_s: float | None
    in_flight: int
    delayed: int


def queue_stats(client: redis.Redis, queue: str, now: float | None = None) -> QueueStats:
    with redis_errors(f"reading queue {queue}"):
        backlog = read_backlog(client, queue)
        oldest = _oldest_timestamp_ms(client, queue)
    now = time.time() if now is None else now
    age = max(0.0, now - oldest / 1000) if oldest is not None else None
    return QueueStats(queue, backlog.ready, age, backlog.in_flight, backlog.delayed)


def _oldest_timestamp_ms(client: redis.Redis, queue: str) -> float | None:
    head = client.lindex(keys.queue_list(queue), 0)
    raw = client.hget(keys.queue_messages(queue), str(head)) if head else None
    try:
        stamp = json.loads(str(raw)).get("message_timestamp") if raw else None
    except ValueError:
        return None
    return float(stamp) if isinstance(stamp, int | float) else None
