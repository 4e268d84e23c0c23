"""A customer's timeline: the last things that happened to it, newest first, for on-call and the API.

Webhooks received (type, event id, Kinde's timestamp, what came of it), passes (what was read from
Kinde, what was written), link changes, payment standing changes, dead letters and replays. Capped
at `CAP` entries per customer and expiring `ROLESYNC_HISTORY_TTL_S` after the last one. An entry
holds ids, types, counts and times only: `entry` drops any field whose name suggests a credential,
masks credentials inside other strings (common/infra/redaction.py, the log lines' rule too) and cuts long
strings, so a careless caller cannot put a token or a secret in it.

Writing the timeline never fails the work it describes: a Redis error there is logged and dropped.
Redis: `keys.customer_history(customer)`, a list of JSON entries.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import redis
import structlog

from common import keys
from common.errors import RetryableError
from common.infra.connections import redis_errors
from common.infra.lua_scripts import lua_script
from common.infra.redaction import redacted, secret_sounding

log = structlog.get_logger(__name__)
CAP = 200
# Every capped list a service writes newest first (this timeline, the plan-selection decisions) is pushed by it.
CAPPED_PUSH = lua_script("common.customers", "capped_push.lua")
_STRING_CAP = 200


def entry(kind: str, at: float | None = None, **fields: Any) -> dict[str, Any]:
    """A timeline entry: `kind` and `at` plus the given fields, with nothing credential-like in it."""
    kept = {k: _clean(redacted(k, v)) for k, v in fields.items() if v is not None and not secret_sounding(k)}
    return {"kind": kind, "at": round(time.time(), 3) if at is None else at, **kept}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value[:_STRING_CAP]
    if isinstance(value, list | tuple):
        return [_clean(v) for v in list(value)[:50]]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if not secret_sounding(str(k))}
    return value if isinstance(value, int | float | bool) else str(value)[:_STRING_CAP]


class History(Protocol):
    def add(self, customer_id: str, item: dict[str, Any]) -> None: ...

    def recent(self, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]: ...


class RedisHistory:
    def __init__(self, client: redis.Redis, *, ttl_s: int) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._push = client.register_script(CAPPED_PUSH)

    def add(self, customer_id: str, item: dict[str, Any]) -> None:
        entry_json = json.dumps(item, sort_keys=True, separators=(",", ":"))  # compact: ~1M lists
        try:
            with redis_errors("writing a customer's timeline"):
                self._push(keys=[keys.customer_history(customer_id)], args=[entry_json, CAP, self._ttl_s])
        except RetryableError as exc:
            log.warning("history_entry_dropped", kind=item.get("kind"), error=str(exc))

    def recent(self, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]:
        with redis_errors("reading a customer's timeline"):
            raws = self._redis.lrange(keys.customer_history(customer_id), 0, max(0, min(limit, CAP) - 1))
        return [json.loads(r) for r in raws]
