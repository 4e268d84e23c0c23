"""Is the pipe idle? The one check the benchmarks and the chaos suites wait on (issue 25, item 8).

Idle on `queues`: no message of theirs queued, running or delayed — each queue's and its delay queue's message
hash (Dramatiq keeps a message there from enqueue to ack) and ack sets (the messages consumers hold) are all empty.
Callers name the queues they wait for: the event queues, or every queue a pass runs on.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from common import keys


def unfinished(r: redis.Redis, queues: Iterable[str]) -> int:
    """Messages queued, delayed or fetched-but-unacked on `queues` (an in-flight one may count twice)."""
    total = 0
    for queue in queues:
        total += int(r.hlen(keys.queue_messages(queue))) + int(r.hlen(keys.delay_queue_messages(queue)))
        total += sum(int(r.scard(key)) for key in r.scan_iter(keys.ack_sets_pattern(queue)))
        total += sum(int(r.scard(key)) for key in r.scan_iter(keys.ack_sets_pattern(f"{queue}.DQ")))
    return total


def idle(r: redis.Redis, queues: Iterable[str]) -> bool:
    return unfinished(r, queues) == 0
