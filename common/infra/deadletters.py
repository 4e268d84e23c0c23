"""Our own dead-letter store: one durable record per event id, with the reason a human needs.

Dramatiq's `.XQ` expires after 7 days and keeps no reason, so the worker writes here instead: from
its dead-letter middleware (permanent errors, exhausted retries, unexpected errors) and when it parks an event whose
customer is unknown (`customer_unresolved`, replayed automatically once a link is learned). Events
Kinde refused for a missing scope (`kinde_forbidden`, with the endpoint and scope) are replayed
automatically once a probe of that endpoint succeeds (worker/sweeps/scope_probe.py). Records never
expire; on-call lists, requeues and removes them with `rolesync dlq`.

Reasons: `customer_unresolved`, `retries_exhausted`, `unexpected_error`, `kinde_forbidden`,
`kinde_<CODE>`, `role_not_found:<key>`, `too_old`, `undecodable`, `notify_failed` (see docs/architecture.md).

Redis layout (common/keys.py): `dlq:record:{id}` holds the JSON record, the zset `dlq` scores ids
by last failure time, `dlq:customer:{customer}` indexes a customer's records.

Every `put` gives the record a fresh random `version`. A replay enqueues first and removes after, so
the replayed event can fail again, and be recorded again, in between: `remove_replayed` removes
only the version that was replayed (compare-and-delete), never the newer failure. It keeps a copy
(`dlq:replayed:{id}`, REPLAYED_TTL_S) so that a replay failing later still counts on: a record keeps
its first failure's time and adds up its attempts across replays. A purge (`remove_if_current`,
`remove`) forgets the record whole.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import redis

from common import keys
from common.infra import minute_counts
from common.infra.connections import redis_errors

UNRESOLVED = "customer_unresolved"
RETRIES_EXHAUSTED = "retries_exhausted"
UNEXPECTED = "unexpected_error"
UNDECODABLE = "undecodable"
FORBIDDEN = "kinde_forbidden"
TOO_OLD = "too_old"
NOTIFY_FAILED = "notify_failed"  # a webhook to the app it refused or never took (worker/outputs/notify_delivery.py)
REPLAYED_TTL_S = 7 * 24 * 3600  # how long a replayed record is remembered: past the longest retry budget


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the event id
    claims: dict[str, Any]  # verified JWT claims, never the raw token
    reason: str
    last_error: str
    attempts: int
    first_failed_at: float
    last_failed_at: float
    customer_id: str | None
    event_type: str | None
    version: str = ""  # set by the store on every put; "" on records written before versions existed
    endpoint: str | None = None  # kinde_forbidden: the call Kinde refused, probed until it answers
    scope: str | None = None  # kinde_forbidden: what to grant the M2M app

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> DeadLetter:
        data = json.loads(raw)
        record = cls(**{name: data.get(name) for name in cls.__dataclass_fields__})
        return replace(record, version=record.version or "")

    def merged_into(self, older: DeadLetter | None) -> DeadLetter:
        """This failure recorded over an earlier record of the same event (or its replayed copy): keep when it
        first failed, and count the earlier attempts too."""
        if older is None:
            return self
        first = min(older.first_failed_at, self.first_failed_at)
        return replace(self, first_failed_at=first, attempts=older.attempts + self.attempts)

    def new_version(self) -> DeadLetter:
        return replace(self, version=uuid.uuid4().hex)


Records = list[DeadLetter]  # aliased: the stores' `list` method shadows the builtin in class scope
Ids = list[str]


class DeadLetterStore(Protocol):
    def put(self, record: DeadLetter) -> DeadLetter:
        """Create or update the record of `record.id` (keeping the earliest `first_failed_at`)."""

    def get(self, record_id: str) -> DeadLetter | None: ...

    def list(self, *, reason: str | None = None, customer_id: str | None = None, limit: int = 100) -> Records:
        """Newest failure first, optionally only one reason (or reason prefix ending in ':') or customer."""

    def remove(self, record_id: str) -> bool: ...

    def remove_if_current(self, record: DeadLetter) -> bool:
        """Remove `record.id` only while its stored version is still `record.version` (compare-and-delete)."""

    def remove_replayed(self, record: DeadLetter) -> bool:
        """As `remove_if_current`, keeping a copy for REPLAYED_TTL_S that a later `put` of the id counts on from."""

    def of_customer(self, customer_id: str) -> Records: ...

    def count_by_reason(self) -> dict[str, int]: ...


def matches(record: DeadLetter, reason: str | None, customer_id: str | None) -> bool:
    """The filter every store applies; a reason ending in ':' (`role_not_found:`) matches as a prefix."""
    if customer_id is not None and record.customer_id != customer_id:
        return False
    if reason is None:
        return True
    return record.reason.startswith(reason) if reason.endswith(":") else record.reason == reason


# KEYS: the record, the `dlq` zset, the replayed copy, then the customer index if any. ARGV: record id, the
# version to remove, how long to keep a copy ('0': none). Records written before versions existed match "".
_REMOVE_IF_CURRENT = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local version = cjson.decode(raw)['version']
if type(version) ~= 'string' then version = '' end
if version ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] ~= '0' then redis.call('SET', KEYS[3], raw, 'EX', ARGV[3]) end
for i = 4, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
return 1
"""


class RedisDeadLetterStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._remove_if_current = client.register_script(_REMOVE_IF_CURRENT)

    def put(self, record: DeadLetter) -> DeadLetter:
        merged = record.merged_into(self._earlier(record.id)).new_version()
        with redis_errors("writing a dead letter"), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.dead_letter(merged.id), merged.to_json())
            pipe.delete(keys.dead_letter_replayed(merged.id))
            pipe.zadd(keys.DEAD_LETTERS, {merged.id: merged.last_failed_at})
            if merged.customer_id:
                pipe.sadd(keys.dead_letters_of_customer(merged.customer_id), merged.id)
            minute_counts.add(pipe, minute_counts.DEAD_LETTERS, merged.last_failed_at)
            pipe.execute()
        return merged

    def get(self, record_id: str) -> DeadLetter | None:
        with redis_errors("reading a dead letter"):
            raw = self._redis.get(keys.dead_letter(record_id))
        return DeadLetter.from_json(str(raw)) if raw else None

    def _earlier(self, record_id: str) -> DeadLetter | None:
        """The record of the id, else its replayed copy."""
        with redis_errors("reading a dead letter"):
            raw = self._redis.get(keys.dead_letter(record_id)) or self._redis.get(keys.dead_letter_replayed(record_id))
        return DeadLetter.from_json(str(raw)) if raw else None

    def list(self, *, reason: str | None = None, customer_id: str | None = None, limit: int = 100) -> Records:
        records = (r for r in self._all() if matches(r, reason, customer_id))
        return [r for _, r in zip(range(limit), records, strict=False)]

    def remove(self, record_id: str) -> bool:
        record = self.get(record_id)
        with redis_errors("removing a dead letter"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.dead_letter(record_id), keys.dead_letter_replayed(record_id))
            pipe.zrem(keys.DEAD_LETTERS, record_id)
            if record and record.customer_id:
                pipe.srem(keys.dead_letters_of_customer(record.customer_id), record_id)
            pipe.execute()
        return record is not None

    def remove_if_current(self, record: DeadLetter) -> bool:
        return self._remove_version(record, 0)

    def remove_replayed(self, record: DeadLetter) -> bool:
        return self._remove_version(record, REPLAYED_TTL_S)

    def _remove_version(self, record: DeadLetter, keep_s: int) -> bool:
        index = [keys.dead_letters_of_customer(record.customer_id)] if record.customer_id else []
        script_keys = [keys.dead_letter(record.id), keys.DEAD_LETTERS, keys.dead_letter_replayed(record.id), *index]
        with redis_errors("removing a dead letter"):
            return bool(self._remove_if_current(keys=script_keys, args=[record.id, record.version, keep_s]))

    def of_customer(self, customer_id: str) -> Records:
        with redis_errors("reading a customer's dead letters"):
            ids = sorted(str(i) for i in self._redis.smembers(keys.dead_letters_of_customer(customer_id)))
        return self._load(ids)

    def count_by_reason(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self._all()))

    def _all(self) -> Records:
        with redis_errors("listing dead letters"):
            ids = [str(i) for i in self._redis.zrevrange(keys.DEAD_LETTERS, 0, -1)]
        return self._load(ids)

    def _load(self, ids: Ids) -> Records:
        if not ids:
            return []
        with redis_errors("reading dead letters"):
            raws = self._redis.mget([keys.dead_letter(i) for i in ids])
        return [DeadLetter.from_json(str(raw)) for raw in raws if raw]
