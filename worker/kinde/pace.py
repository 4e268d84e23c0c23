"""The fleet's pace toward Kinde after a 429: recovered by evidence, AIMD (pure logic; the clock is passed in).

A 429 (ours, or another client's of the same tenant: Kinde's limit is the tenant's) starts a cool-down
of `RateLimit-Reset` seconds and lowers the shared rate to `BACKOFF` x the rate then (multiplicative
decrease, once per cool-down). During a cool-down only probes go: one call per probe gap for the whole
fleet, the gap doubling with each further 429 (`strikes`) so a real limit that holds for a minute costs
a handful of 429s, not one per gap. The first probe Kinde answers ends the cool-down: the limit lets
calls through again, and waiting out the rest of `RateLimit-Reset` would only waste the rate. From the
cool-down's end the rate climbs back (additive increase) until it is the configured rate again.

How far it falls and how fast it climbs follows the evidence. A 429 whose first probe Kinde answers
says little about our rate: Kinde's limit is shared with the tenant's other clients, and calls in
flight when it came (sent before it) may get 429s too without saying anything new. It costs `BACKOFF`
(a tenth) and the rate climbs back by `CLIMB_SHARE_PER_S` of the configured rate a second. A probe
answered 429 (`strikes`) says the limit is really still spent: the cool-down's pace is hardened once
to `HARD_BACKOFF` of the rate at the first 429, climbing by only `SLOW_CLIMB_SHARE_PER_S`, so a
configured rate far above the tenant's limit falls to it in a few cool-downs and stays near it.

Figures (docs/benchmarks.md, "Backlog"): a random 1 % of 429s at R = 50 req/s is one every ~2 s; each
costs ~10 % of the rate for ~0.4 s and a probe's round trip, where the fixed rule it replaces (half
the rate for a minute) cost ~30 s of the whole rate per 429.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKOFF = 0.9
CLIMB_SHARE_PER_S = 0.25
HARD_BACKOFF = 0.5
SLOW_CLIMB_SHARE_PER_S = 0.02
MIN_RPS = 0.5
PROBE_GAP_S = 0.2
MAX_STRIKES = 8  # probe gaps stop doubling at 0.2 x 2^8 ≈ 51 s


@dataclass(frozen=True)
class Pace:
    """The shared rate after the last decrease, when its climb back began (epoch s) and how fast (req/s a second)."""

    lowered: float
    climb_from: float
    climb_per_s: float = float("inf")  # a record without one: climbed back

    def rate(self, configured: float, now: float) -> float:
        climbed = self.lowered + self.climb_per_s * max(0.0, now - self.climb_from)
        return min(configured, climbed)

    def kept_s(self, configured: float, now: float) -> float:
        """How long the record matters: until the rate is the configured one again (and a second more)."""
        return max(0.0, self.climb_from - now) + max(0.0, configured - self.lowered) / self.climb_per_s + 1

    def encode(self) -> str:
        return f"{self.lowered:.3f}:{self.climb_from:.3f}:{self.climb_per_s:.3f}"

    @classmethod
    def decode(cls, raw: str | None) -> Pace | None:
        """None for no record or an unreadable one (the configured rate then holds)."""
        parts = (raw or "").split(":")
        try:
            numbers = [float(p) for p in parts[:3]]
        except ValueError:
            return None
        return cls(numbers[0], *numbers[1:]) if len(parts) > 1 else cls(numbers[0], 0.0)


def lowered(pace: Pace | None, configured: float, now: float, reset_s: float) -> Pace:
    """The pace after a 429 that started a cool-down of `reset_s` (its climb begins when the cool-down ends)."""
    current = pace.rate(configured, now) if pace else configured
    return Pace(max(MIN_RPS, current * BACKOFF), now + reset_s, CLIMB_SHARE_PER_S * configured)


def hardened(pace: Pace | None, configured: float) -> Pace | None:
    """The cool-down's pace once a second 429 came in it: lower, from the rate at the first, climbing slowly."""
    if pace is None:
        return None
    at_first = pace.lowered / BACKOFF
    return Pace(max(MIN_RPS, at_first * HARD_BACKOFF), pace.climb_from, SLOW_CLIMB_SHARE_PER_S * configured)


def relieved(pace: Pace | None, now: float) -> Pace | None:
    """The pace once a probe was answered: the climb begins now, not at the end `RateLimit-Reset` named."""
    return Pace(pace.lowered, min(pace.climb_from, now), pace.climb_per_s) if pace else None


@dataclass(frozen=True)
class CoolDown:
    """Until when only probes go (epoch seconds), and how many 429s came since it began."""

    until: float
    strikes: int = 0

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    def probe_gap_s(self) -> float:
        return PROBE_GAP_S * float(2 ** min(self.strikes, MAX_STRIKES))

    def struck(self, now: float, reset_s: float) -> CoolDown:
        """A probe answered 429 while it runs: it lasts at least `reset_s` more, and probes space out."""
        return CoolDown(max(self.until, now + reset_s), self.strikes + 1)

    def extended(self, now: float, reset_s: float) -> CoolDown:
        """A call in flight since before it began answered 429: it lasts at least `reset_s` more."""
        return CoolDown(max(self.until, now + reset_s), self.strikes)

    def encode(self) -> str:
        return f"{self.until:.3f}:{self.strikes}"

    @classmethod
    def decode(cls, raw: str | None) -> CoolDown | None:
        until, _, strikes = (raw or "").partition(":")
        try:
            return cls(float(until), int(strikes or 0))
        except ValueError:
            return None
