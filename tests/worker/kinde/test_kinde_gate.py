"""The shared Kinde gate on real Redis, several gates as several processes, the pace's clock injected:
a cool-down lets one probe through, a probe answered ends it for everyone at once, and the lowered
shared rate climbs back to the configured one as the clock runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from common import keys
from common.errors import RateLimitedError
from worker.kinde.pace import BACKOFF, CLIMB_SHARE_PER_S, HARD_BACKOFF, Pace
from worker.kinde.ratelimit import RedisKindeGate, patient_slot_waits, window_slots

RPS = 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def rate(client: redis.Redis, now: float) -> float:
    pace = Pace.decode(client.get(keys.KINDE_RPS_CAP))
    return pace.rate(RPS, now) if pace else RPS


def test_a_waiter_goes_as_soon_as_another_process_s_probe_is_answered(client: redis.Redis) -> None:
    clock = Clock()
    hit, prober, waiter = (RedisKindeGate(client, RPS, clock) for _ in range(3))
    hit.cool_down(60.0)  # Kinde said: the limit resets in a minute
    prober.wait_turn()  # the fleet's one probe
    client.pexpire(keys.KINDE_PROBE, 60_000)  # and a slow one: no second probe while it is out
    went: list[float] = []

    def wait() -> None:
        with patient_slot_waits():
            waiter.wait_turn()
        went.append(time.monotonic())

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.5)
    assert not went  # no probe free: it waits in its thread
    answered = time.monotonic()
    prober.answered()  # Kinde answered the probe: the limit lets calls through again
    thread.join(10)
    assert went
    assert went[0] - answered < 2.0  # polled every 50 ms; 2 s only rules out a stall
    assert client.get(keys.KINDE_COOLDOWN_UNTIL) is None


def test_the_lowered_rate_climbs_back_from_the_answered_probe(client: redis.Redis) -> None:
    clock = Clock()
    hit, prober = RedisKindeGate(client, RPS, clock), RedisKindeGate(client, RPS, clock)
    hit.cool_down(30.0)
    assert rate(client, clock.now + 29) == pytest.approx(RPS * BACKOFF, abs=0.5)  # no climb before Kinde answers
    clock.now += 0.1
    prober.wait_turn()
    prober.answered()
    assert rate(client, clock.now) == pytest.approx(RPS * BACKOFF, abs=0.5)
    half = (1 - BACKOFF) / CLIMB_SHARE_PER_S / 2  # a lone 429 climbs back fast
    assert rate(client, clock.now + half) == pytest.approx(
        RPS * (1 + BACKOFF) / 2, abs=0.5
    )  # times are stored to the ms
    assert rate(client, clock.now + 2 * half) == pytest.approx(RPS, abs=0.5)
    assert 0 < client.pttl(keys.KINDE_RPS_CAP) <= (2 * half + 1) * 1000  # the record goes once climbed back


def test_a_probe_answered_429_halves_the_rate_once_a_call_in_flight_does_not_and_a_waiter_gives_up(
    client: redis.Redis,
) -> None:
    clock = Clock()
    first, in_flight, prober, caller = (RedisKindeGate(client, RPS, clock) for _ in range(4))
    in_flight.wait_turn()  # sent before the 429 below
    first.cool_down(5.0)
    assert rate(client, clock.now) == pytest.approx(RPS * BACKOFF, abs=0.5)  # a 429: a tenth
    in_flight.cool_down(5.0)  # its answer, sent before the cool-down: nothing new
    assert rate(client, clock.now) == pytest.approx(RPS * BACKOFF, abs=0.5)
    prober.wait_turn()  # the probe
    prober.cool_down(5.0)  # answered 429: the limit is really spent
    assert rate(client, clock.now) == pytest.approx(RPS * HARD_BACKOFF, abs=0.5)
    client.delete(keys.KINDE_PROBE)
    prober.wait_turn()
    prober.cool_down(5.0)
    assert rate(client, clock.now) == pytest.approx(RPS * HARD_BACKOFF, abs=0.5)  # once per cool-down
    client.set(keys.KINDE_PROBE, "1", px=60_000)  # a probe is out and has not come back
    began = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        caller.wait_turn()
    assert 0.7 < time.monotonic() - began < 5.0  # its slot wait (0.8 s), not the cool-down's 5 s
    assert 4 < (caught.value.retry_after_s or 0) <= 5.001  # stored to the ms


def test_a_call_that_was_no_probe_ends_no_cool_down(client: redis.Redis) -> None:
    clock = Clock()
    gate = RedisKindeGate(client, RPS, clock)
    gate.wait_turn()  # a turn before any 429: not a probe
    RedisKindeGate(client, RPS, clock).cool_down(30.0)
    gate.answered()  # its answer was sent before the 429: no evidence about now
    assert client.get(keys.KINDE_COOLDOWN_UNTIL) is not None


def test_a_climbing_rate_keeps_the_shared_windows_and_admits_no_more_than_it(client: redis.Redis) -> None:
    """Windows shaped by the rate itself would be other Redis keys at each step of a climb, each
    counted from zero: a burst per step (seen as 429s 0.3-0.9 s after each cool-down in bench backlog)."""
    began = time.time()
    client.set(keys.KINDE_RPS_CAP, Pace(50.0, began, 100.0).encode(), px=10_000)  # 50 → 100 req/s over 0.5 s
    gates = [RedisKindeGate(client, 100.0) for _ in range(4)]
    admitted: list[float] = []

    def hammer(gate: RedisKindeGate) -> None:
        while time.time() - began < 1.0:
            try:
                gate.wait_turn()
                admitted.append(time.time())
            except RateLimitedError:
                pass

    threads = [threading.Thread(target=hammer, args=(gate,)) for gate in gates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    within = [t for t in admitted if t - began < 1.0]
    assert len(within) <= 87.5 + 10  # ∫ rate over the second (37.5 + 50), plus a window's slack at each end


def test_window_slots_average_the_rate_in_the_configured_windows() -> None:
    for rps in (0.7, 3.0, 42.75, 47.5):
        slots = [window_slots(rps, 85, start) for start in range(0, 85 * 1000, 85)]
        assert abs(sum(slots) - rps * 85) <= 1  # 1,000 windows of 85 ms: 85 s at `rps`
        assert max(slots) - min(slots) <= 1
