"""Dedupe and enqueue a verified event in one atomic Redis step, without blocking the loop.

Dramatiq's `send` is a blocking redis-py call (docs/stack-notes.md, Enqueueing from an async endpoint), so the message
is written natively with redis.asyncio in Dramatiq's documented layout (`HSET <q>.msgs id data`
+ `RPUSH <q> id`). The dedupe key is set in the same Lua script: either the event is marked seen
AND queued, or neither, so a failure can never leave a "seen" event that is not queued (which
would make Kinde's retry look like a duplicate and lose the event). Redis runs a script to the
end once its first write succeeded, even under `noeviction` memory pressure.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import redis.asyncio
import redis.exceptions
import structlog

from common import keys
from common.errors import RetryableError
from common.infra import minute_counts
from common.infra.minute_counts import ACCEPTED, Tally
from common.message_layout import message_head
from common.messages import BULK_QUEUE, EVENTS_QUEUE, event_message
from common.webhooks.events import customer_id_of, is_billing
from ingest.batching import ScriptBatcher
from ingest.event_body import encoded_event

# KEYS: seen key, queue hash, queue list [, event generation key, customer generation counter,
#       bulk queue hash, bulk queue list, customer grant record, burst counter].
# ARGV: webhook id, ttl seconds, redis message id, message body after its queue and actor
#       [, customer id, burst threshold, burst window seconds].
# Redis does not roll a script back, so every check that could fail runs before the first write.
# A billing event gets its customer generation here, as it is queued (worker/events/coalesce.py reads it back):
# a converge pass then covers every event of the customer ingested before it started, however far
# behind the workers are, instead of only those a worker had already picked up.
# Routing (docs/deploy.md, "Bulk without starvation"): past `threshold` billing events in the window,
# an event of a customer that already has plans (its grant record lists some) is bulk; a first plan
# never is, whether the customer has no record or only the plan-less one its sign-up's pass wrote.
# The script prepends the queue and actor to the body, so the routing costs no extra round trip.
log = structlog.get_logger(__name__)
COUNTS_EVERY_S = 1.0

ENQUEUE_ONCE_LUA = """
local function holds(key, kind)
  local found = redis.call('TYPE', key)['ok']
  return found == 'none' or found == kind
end
local function counts(key)
  local counter = redis.call('GET', key)
  return not counter or tonumber(counter)
end
local function has_plans(key)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local ok, record = pcall(cjson.decode, raw)
  return ok and type(record) == 'table' and type(record['plans']) == 'table' and next(record['plans']) ~= nil
end
if not (holds(KEYS[2], 'hash') and holds(KEYS[3], 'list')) then
  return redis.error_reply('WRONGTYPE the Dramatiq queue keys hold another type')
end
if #KEYS == 9 then
  if not (holds(KEYS[6], 'hash') and holds(KEYS[7], 'list')) then
    return redis.error_reply('WRONGTYPE the Dramatiq bulk queue keys hold another type')
  end
  if not (counts(KEYS[5]) and counts(KEYS[9])) then
    return redis.error_reply('WRONGTYPE a generation or burst counter is not a number')
  end
  if not holds(KEYS[8], 'string') then
    return redis.error_reply('WRONGTYPE the grant record is not a string')
  end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
local queue_hash, queue_list, head = KEYS[2], KEYS[3], [[%(fresh)s]]
if #KEYS == 9 then
  local seen = redis.call('INCR', KEYS[9])
  if seen == 1 then
    redis.call('EXPIRE', KEYS[9], ARGV[7])
  end
  local threshold = tonumber(ARGV[6])
  if threshold > 0 and seen > threshold and has_plans(KEYS[8]) then
    queue_hash, queue_list, head = KEYS[6], KEYS[7], [[%(bulk)s]]
  end
end
redis.call('HSET', queue_hash, ARGV[3], head .. ARGV[4])
redis.call('RPUSH', queue_list, ARGV[3])
if #KEYS == 9 and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('SET', KEYS[4], ARGV[5] .. '|' .. redis.call('INCR', KEYS[5]), 'EX', ARGV[2])
end
return 1
"""
BURST_WINDOW_S = 10


def _head(bulk: bool) -> str:
    """The encoded message's opening up to its args: `{"queue_name":…,"actor_name":…,`."""
    message = event_message({}, None, 0.0, bulk=bulk)
    return message_head(message.queue_name, message.actor_name)


ENQUEUE_SCRIPT = ENQUEUE_ONCE_LUA % {"fresh": _head(False), "bulk": _head(True)}


class EventQueue(Protocol):
    async def enqueue_once(
        self, claims: dict[str, Any], webhook_id: str | None, received_at: float, payload: str | None = None
    ) -> bool:
        """True if queued now, False if this event_id was already seen; RetryableError if unknown.
        `payload`: the verified token's payload JSON (claims parsed from it), queued as it is when given."""
        ...

    async def ping(self) -> None:
        """Return if the queue is reachable, raise RetryableError otherwise."""
        ...


class RedisEventQueue:
    def __init__(
        self, client: redis.asyncio.Redis, *, dedupe_ttl_s: int, min_replicas: int = 0, burst_events: int = 30
    ) -> None:
        self._client = client
        self._ttl = dedupe_ttl_s
        self._burst = burst_events
        script = client.register_script(ENQUEUE_SCRIPT)
        self._batcher = ScriptBatcher(client, script, min_replicas=min_replicas)
        self.tally = Tally()  # webhooks accepted, per minute, for the console's chart (written by `keep_counts`)

    async def enqueue_once(
        self, claims: dict[str, Any], webhook_id: str | None, received_at: float, payload: str | None = None
    ) -> bool:
        message_id, data = encoded_event(claims, webhook_id, received_at, payload)
        script_keys = [
            keys.seen_event(claims["event_id"]),
            keys.queue_messages(EVENTS_QUEUE),
            keys.queue_list(EVENTS_QUEUE),
        ]
        args: list[str | int | bytes] = [webhook_id or "", self._ttl, message_id, data]
        customer_id = customer_id_of(claims) if is_billing(str(claims.get("type") or "")) else None
        if customer_id:
            script_keys += [keys.event_generation(claims["event_id"]), keys.customer_generation(customer_id)]
            script_keys += [keys.queue_messages(BULK_QUEUE), keys.queue_list(BULK_QUEUE)]
            script_keys += [keys.customer_grants(customer_id), keys.billing_burst(int(received_at) // BURST_WINDOW_S)]
            args += [customer_id, self._burst, BURST_WINDOW_S * 2]
        queued = bool(await _translated(self._batcher.call(script_keys, args)))
        if queued:
            self.tally.add(ACCEPTED, received_at)
        return queued

    async def keep_counts(self, every_s: float = COUNTS_EVERY_S) -> None:
        """Write the tally's counts every `every_s` until cancelled; a failed write is logged, its counts dropped."""
        while True:
            await asyncio.sleep(every_s)
            await self.flush_counts()

    async def flush_counts(self) -> None:
        taken = self.tally.take()
        if not taken:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for name, at, by in taken:
                    minute_counts.add(pipe, name, at, by)
                await _translated(pipe.execute())
        except RetryableError as exc:
            log.warning("minute_count_dropped", name=ACCEPTED, error=str(exc))

    async def ping(self) -> None:
        await _translated(self._client.ping())

    async def aclose(self) -> None:
        """Close the batcher's own connection (the client, which the caller owns, stays open)."""
        await self._batcher.aclose()


async def _translated(call: Any) -> Any:
    try:
        return await call
    except redis.exceptions.RedisError as exc:
        raise RetryableError(f"Redis is unavailable: {type(exc).__name__}", reason="redis_unavailable") from None
