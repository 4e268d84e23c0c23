"""A customer's payment standing, kept from payment webhooks for plans.toml's `[payment_failed]` policy.

`customer.payment_failed` and `customer.invoice_overdue` make it "failing"; `customer.payment_succeeded`
and any new agreement (`agreement_created`, `plan_assigned`, `plan_changed`: a checkout that went
through) make it "ok". Webhooks arrive late and out of order, so a record keeps its event's own time
and only a newer event replaces it; on a tie "ok" wins, so a paying customer is never suspended by
a race. Kinde's API has no payment read, so a reconcile cannot rebuild this: a lost
`payment_succeeded` is healed by the customer's next new agreement, or by on-call
(`rolesync customers show` prints the standing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

import redis

from common import keys
from common.infra.connections import redis_errors
from common.webhooks.events import epoch_of

if TYPE_CHECKING:
    from common.plans.mapping import PlanMap

Standing = Literal["ok", "failing"]
FAILING_EVENTS = frozenset({"customer.payment_failed", "customer.invoice_overdue"})
OK_EVENTS = frozenset(
    {"customer.payment_succeeded", "customer.agreement_created", "customer.plan_assigned", "customer.plan_changed"}
)

# KEYS: payment key. ARGV: standing, event time, event id.
# Returns 1 if this event flipped the customer between failing and not, now or on an earlier attempt
# whose flip is still the latest one (`flipped_by`): a retry after the flip was recorded but before its
# recount was counted must count it still. Else 0 (kept a newer one, or changed nothing).
_RECORD = """
local old = redis.call('HMGET', KEYS[1], 'standing', 'at', 'flipped_by')
local at, new_at = tonumber(old[2] or '-1'), tonumber(ARGV[2])
local mine = (ARGV[3] ~= '' and old[3] == ARGV[3]) and 1 or 0
if new_at < at or (new_at == at and ARGV[1] == 'failing') then return mine end
if (old[1] == 'failing') ~= (ARGV[1] == 'failing') then
  redis.call('HSET', KEYS[1], 'standing', ARGV[1], 'at', ARGV[2], 'flipped_by', ARGV[3])
  return 1
end
redis.call('HSET', KEYS[1], 'standing', ARGV[1], 'at', ARGV[2])
return mine
"""


def standing_after(event_type: str) -> Standing | None:
    if event_type in FAILING_EVENTS:
        return "failing"
    return "ok" if event_type in OK_EVENTS else None


def event_time(claims: dict[str, Any], fallback: float) -> float:
    """The event's own `timestamp` (or `event_timestamp`) in epoch seconds; `fallback` if unreadable."""
    for field in ("timestamp", "event_timestamp"):
        if (found := epoch_of(claims.get(field))) is not None:
            return found
    return fallback


class PaymentStore(Protocol):
    def record(self, customer_id: str, standing: Standing, at: float, event_id: str = "") -> bool:
        """Keep `standing` unless a newer (or as-new "ok") one is recorded.

        True only if this flipped the customer between failing and not (what changes its roles), or if
        `event_id` made the latest such flip on an earlier attempt (so a retry still acts on it).
        """

    def standing(self, customer_id: str) -> dict[str, Any] | None:
        """{"standing": ..., "at": epoch s} or None if no payment event was seen."""


class RedisPaymentStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._record = client.register_script(_RECORD)

    def record(self, customer_id: str, standing: Standing, at: float, event_id: str = "") -> bool:
        with redis_errors("recording a payment standing"):
            args = [standing, f"{at:.6f}", event_id]
            return bool(self._record(keys=[keys.customer_payment(customer_id)], args=args))

    def standing(self, customer_id: str) -> dict[str, Any] | None:
        with redis_errors("reading a payment standing"):
            raw = self._redis.hgetall(keys.customer_payment(customer_id))
        found = {_text(k): _text(v) for k, v in raw.items()}
        return {"standing": found["standing"], "at": float(found["at"])} if "standing" in found else None


def is_failing(found: Mapping[str, Any] | None) -> bool:
    """A recorded standing (`PaymentStore.standing`) says the payment is failing; none recorded is not."""
    return found is not None and found["standing"] == "failing"


def failing_of(payments: PaymentStore | None, *maps: PlanMap) -> Callable[[str], bool]:
    """A customer's payment is failing (read only when one of the mappings suspends on it)."""
    if payments is None or not any(m.suspends() for m in maps):
        return lambda _: False
    return lambda customer_id: is_failing(payments.standing(customer_id))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
