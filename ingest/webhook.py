"""What one webhook delivery comes to: verify, filter, dedupe+enqueue, and the answer for Kinde.

Kinde counts only a 200 as delivered and retries everything else (docs/kinde-facts.md, Webhooks), so
a 200 is given only for an event that is durably queued, already seen, or one we don't act on.
Anything we could not check (Redis down, no signing key) is a 503 so Kinde tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from common.errors import RetryableError
from common.infra import tracing
from common.webhooks.events import customer_id_of, is_acted_on
from ingest.claims import Policy
from ingest.enqueue import EventQueue
from ingest.rejection import Rejected
from ingest.verify import KeySource, signed_payload, signing_kid, token_text, verify_by_kid

ACCEPTED = frozenset({"queued", "duplicate", "ignored"})


class Keyring(KeySource, Protocol):
    @property
    def loaded(self) -> bool: ...

    async def ensure(self, kid: str) -> None:
        """Try to make `kid` known (bounded refetch); RetryableError if no key can be had at all."""
        ...


@dataclass(frozen=True)
class Outcome:
    """The answer to one delivery. `outcome` is a metrics label and log field."""

    status_code: int
    outcome: str
    reason: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    enqueue_s: float | None = None
    retry_after_s: int | None = None  # sent as Retry-After (ingest/signature_limit.py)

    def body(self) -> dict[str, str]:
        if self.outcome in ACCEPTED:
            return {"status": self.outcome}
        return {"status": self.outcome, "error": self.reason or self.outcome}

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


@dataclass
class WebhookIntake:
    keys: Keyring
    queue: EventQueue
    policy: Policy
    clock: Callable[[], float] = time.time

    async def handle(self, body: bytes, webhook_id: str | None) -> Outcome:
        try:
            with tracing.span("webhook.verify"):
                claims, payload = await self._verified(body)
        except Rejected as exc:
            return Outcome(exc.status_code, "rejected", exc.reason)
        except RetryableError as exc:
            return Outcome(503, "unavailable", exc.reason)
        if not is_acted_on(claims["type"]):
            return Outcome(200, "ignored", claims=claims)
        tracing.annotate(**{"event.type": claims["type"], "event.id": claims.get("event_id"),
                            "customer.id": customer_id_of(claims)})  # fmt: skip
        with tracing.span("webhook.enqueue"):
            return await self._enqueued(claims, payload, webhook_id)

    async def _verified(self, body: bytes) -> tuple[dict[str, Any], str | None]:
        """The checked claims and the payload JSON they were parsed from (None: encode the claims instead)."""
        token = token_text(body)
        kid = signing_kid(token)
        await self.keys.ensure(kid)
        now = datetime.fromtimestamp(self.clock(), UTC)
        return verify_by_kid(token, kid, self.keys, now=now, policy=self.policy), signed_payload(token)

    async def _enqueued(self, claims: dict[str, Any], payload: str | None, webhook_id: str | None) -> Outcome:
        started = time.perf_counter()
        try:
            queued = await self.queue.enqueue_once(claims, webhook_id, self.clock(), payload)
        except RetryableError as exc:
            return Outcome(503, "unavailable", exc.reason, claims)
        elapsed = time.perf_counter() - started
        return Outcome(200, "queued" if queued else "duplicate", claims=claims, enqueue_s=elapsed)
