"""Failures counted per client address in a sliding window: after N within it, the address waits.

The count behind both limits on unauthenticated callers: the API's failed authentications
(api/auth_limit.py) and the ingest's bad webhook signatures (ingest/signature_limit.py). In process
memory, not Redis: the path under attack costs no Redis round trip and works while Redis is down.
Bounded: one deque of at most N timestamps per address, at most MAX_ADDRESSES addresses, the least
recently failing dropped first. Each process counts alone. Not thread-safe: one per event loop.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_ADDRESSES = 10_000


class FailureLimiter:
    def __init__(self, max_failures: int, window_s: float, *, max_addresses: int = MAX_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.max_failures, self.window_s, self._clock = max_failures, window_s, clock
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_failures > 0 and self.window_s > 0

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None if it may now."""
        times = self._failures.get(address)
        if not times:
            return None
        now = self._clock()
        self._expire(times, now)
        if not times:
            del self._failures[address]
            return None
        if len(times) < self.max_failures:
            return None
        return max(1, math.ceil(times[0] + self.window_s - now))

    def failed(self, address: str) -> None:
        now = self._clock()
        times = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
        self._expire(times, now)
        times.append(now)
        self._failures[address] = times  # to the end: the most recently failing
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)

    def tracked(self) -> int:
        return len(self._failures)

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()
