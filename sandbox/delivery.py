"""Webhook delivery on Kinde's schedule, in background asyncio tasks.

Each event becomes one delivery with a `webhook-id` that never changes across its attempts.
Attempts follow Kinde's documented schedule (immediately, 5 s, 30 s, 2 min, 10 min, 1 h, 4 h,
then every 12 h up to 36 h) divided by `time_scale`; only a 200 ends a delivery. An endpoint that
has failed without a break for 72 h (scaled) is disabled, as Kinde does, until its URL is set again.
Shuffle, duplicate, drop and delay knobs reproduce the "order is not guaranteed, expect duplicates"
warning of Kinde's docs on demand; `lose_rate` reproduces the event Kinde gave up on (every attempt
failed within its horizon), at once, so a test can see a reconcile repair it without waiting 36 h.
Duplicate and loss are drawn when the event is submitted, so a test that switches a knob around one
action knows exactly which events it hit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from sandbox import ids

log = structlog.get_logger("sandbox.delivery")

FIRST_DELAYS_S = (0, 5, 30, 120, 600, 3600, 4 * 3600)
REPEAT_DELAY_S = 12 * 3600
HORIZON_S = 36 * 3600
DISABLE_AFTER_S = 72 * 3600
MAX_IN_FLIGHT = 32


def retry_delays_s() -> list[float]:
    """Unscaled waits before each attempt: Kinde's list, then 12-hourly while within 36 h."""
    delays: list[float] = list(FIRST_DELAYS_S)
    while sum(delays) + REPEAT_DELAY_S <= HORIZON_S:
        delays.append(REPEAT_DELAY_S)
    return delays


@dataclass
class WebhookSettings:
    url: str = ""
    variant: str = "mix"
    shuffle: bool = False
    duplicate_rate: float = 0.0
    drop_rate: float = 0.0
    delay_ms: int = 0
    paused: bool = False
    lose_rate: float = 0.0


@dataclass
class Delivery:
    url: str
    webhook_id: str
    claims: dict[str, Any]
    attempts: int = 0
    duplicate: bool = False
    lost: bool = False

    @property
    def event_id(self) -> str:
        return str(self.claims.get("event_id"))

    @property
    def type(self) -> str:
        return str(self.claims.get("type"))


@dataclass
class Deliverer:
    settings: WebhookSettings
    sign: Callable[[dict[str, Any]], str]
    time_scale: float = 1.0
    timeout_s: float = 10.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    attempts: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0
    lost: int = 0  # events abandoned by `lose_rate`
    disabled: set[str] = field(default_factory=set)  # endpoint URLs Kinde would have switched off
    _failing_since: dict[str, float] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _resume: asyncio.Event = field(default_factory=asyncio.Event)
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_IN_FLIGHT))
    _http: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.apply(self.settings)

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self.timeout_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def apply(self, settings: WebhookSettings) -> None:
        # Setting a URL again is how a disabled endpoint is re-enabled, as in Kinde's dashboard.
        self.disabled.discard(settings.url)
        self._failing_since.pop(settings.url, None)
        self.settings = settings
        if settings.paused:
            self._resume.clear()
        else:
            self._resume.set()

    def clear(self) -> None:
        """Forget the attempt log and the lost count (reset); deliveries in flight carry on."""
        self.attempts.clear()
        self.lost = 0

    def submit(self, claims: dict[str, Any], extra_urls: list[str] | None = None) -> str | None:
        """Deliver a signed event to the configured URL and `extra_urls`; the first webhook-id, or None."""
        urls = [u for u in [self.settings.url, *(extra_urls or [])] if u]
        if not urls:
            log.info("webhook_skipped", event_id=claims.get("event_id"), type=claims.get("type"), reason="no url")
            return None
        webhook_ids = [self._start(url, claims) for url in urls]
        return webhook_ids[0]

    def _start(self, url: str, claims: dict[str, Any]) -> str:
        delivery = Delivery(url, ids.webhook_id(), claims)
        delivery.duplicate = self.rng.random() < self.settings.duplicate_rate
        delivery.lost = self.rng.random() < self.settings.lose_rate
        self.pending += 1
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery.webhook_id

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await asyncio.sleep(self._initial_wait_s())
            if delivery.lost:
                self._lose(delivery)
                return
            delivered = await self._attempt_on_schedule(delivery)
            if delivered and delivery.duplicate:
                await self._attempt(delivery)
        finally:
            self.pending -= 1

    def _lose(self, delivery: Delivery) -> None:
        self.lost += 1
        log.warning("webhook_abandoned", webhook_id=delivery.webhook_id, event_id=delivery.event_id, reason="lost")

    def _initial_wait_s(self) -> float:
        delay_s = self.settings.delay_ms / 1000
        return self.rng.uniform(0, max(delay_s, 0.05)) if self.settings.shuffle else delay_s

    async def _attempt_on_schedule(self, delivery: Delivery) -> bool:
        for delay in retry_delays_s():
            await asyncio.sleep(delay / self.time_scale)
            if delivery.url in self.disabled:
                break
            if await self._attempt(delivery) == 200:
                return True
        log.warning("webhook_abandoned", webhook_id=delivery.webhook_id, event_id=delivery.event_id)
        return False

    async def _attempt(self, delivery: Delivery) -> int:
        await self._resume.wait()
        delivery.attempts += 1
        async with self._slots:
            status = 0 if self.rng.random() < self.settings.drop_rate else await self._post(delivery)
        self._record(delivery, status)
        return status

    async def _post(self, delivery: Delivery) -> int:
        assert self._http is not None, "Deliverer.start() was not called"
        headers = {"Content-Type": "application/jwt", "webhook-id": delivery.webhook_id}
        try:
            # Signed at send time with the current key, as a provider does: a retry after a key
            # rotation carries the new kid (RS256 is deterministic, so the body is otherwise identical).
            response = await self._http.post(delivery.url, content=self.sign(delivery.claims), headers=headers)
        except httpx.HTTPError as exc:
            log.info("webhook_post_failed", webhook_id=delivery.webhook_id, error=type(exc).__name__)
            return 0
        return response.status_code

    def _record(self, delivery: Delivery, status: int) -> None:
        self.attempts.append(
            {
                "webhook_id": delivery.webhook_id,
                "event_id": delivery.event_id,
                "type": delivery.type,
                "attempt": delivery.attempts,
                "status": status,
                "time": time.time(),
            }
        )
        log.info("webhook_attempted", url=delivery.url, **self.attempts[-1])
        self._track_endpoint_health(delivery.url, status)

    def _track_endpoint_health(self, url: str, status: int) -> None:
        now = time.monotonic()
        if status == 200:
            self._failing_since.pop(url, None)
            return
        since = self._failing_since.setdefault(url, now)
        if now - since >= DISABLE_AFTER_S / self.time_scale and url not in self.disabled:
            self.disabled.add(url)
            log.warning("webhook_endpoint_disabled", url=url)
