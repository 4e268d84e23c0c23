"""A token bucket over the Management API: 429 with `RateLimit-Reset` (seconds), as Kinde answers.

Kinde publishes no figures (docs/kinde-facts.md, Management API), so the rate and burst are settings; 0 turns it off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float = 0.0  # tokens per second; 0 = unlimited
    burst: int = 1
    _tokens: float = field(default=0.0, init=False)
    _at: float = field(default_factory=time.monotonic, init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)

    def configure(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self._tokens, self._at = float(self.burst), time.monotonic()

    def take(self) -> int | None:
        """None when a request may pass; otherwise the whole seconds until one may."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / self.rate))
