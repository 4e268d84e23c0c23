"""One prefetch budget shared by the consumers of several queues in one worker process.

Each bulk queue (common.messages.BULK_QUEUES) gets a prefetch of threads - 1 (worker/runtime/broker.py
`bulk_prefetch`) so that bulk work leaves a thread for fresh work; per queue, two bulk queues busy at
once (a reconcile sweep during a webhook burst) would still hold every thread. Their consumers fetch
from this one budget instead: together they never hold more than it, running or fetched.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Holder(Protocol):
    @property
    def outstanding_message_count(self) -> int: ...


class SharedPrefetch:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # held across a member's fetch, so two members never spend one slot
        self._limit = 0
        self._members: dict[str, Holder] = {}

    def join(self, queue_name: str, consumer: Holder, limit: int) -> None:
        """A (re)started consumer of `queue_name` replaces the one before it (whose messages are requeued)."""
        with self.lock:
            self._members[queue_name] = consumer
            self._limit = limit

    def room(self) -> int:
        """Messages the members may still fetch together (call with `lock` held to spend them)."""
        return self._limit - sum(member.outstanding_message_count for member in list(self._members.values()))
