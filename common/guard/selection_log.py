"""Plan-selection decisions, per customer, in a capped list of their own.

Kinde's plan-selection workflow asks the guard (api/plan_selection.py) before every plan change, and a
user retrying a refused change asks again and again: in the customer's timeline (common/customers/history.py)
such a burst would push out what on-call needs there, the passes, link changes and on-call's own
audit entries (ops/audit.py). So the decisions go to `keys.customer_plan_selections(customer)`, capped
at `CAP` and expiring like the timeline; readers that show a customer's history (`customers history`,
`GET /v1/customers/{id}/history`) merge the two lists by time. Each decision also goes, with its customer id,
to the fleet's list `keys.PLAN_SELECTIONS` (capped at `FLEET_CAP`), which the console's Guard page shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from common import keys
from common.infra.connections import redis_errors

CAP = 100
FLEET_CAP = 200  # the fleet's own list of the last decisions, any customer (`keys.PLAN_SELECTIONS`): the console
KIND = "plan_selection"


def merged(*lists: Iterable[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Entries of several newest-first lists as one, newest first, `limit` at most."""
    every = [item for found in lists for item in found]
    return sorted(every, key=lambda item: float(item.get("at") or 0), reverse=True)[:limit]


def recent(client: redis.Redis, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]:
    with redis_errors("reading a customer's plan-selection decisions"):
        raws = client.lrange(keys.customer_plan_selections(customer_id), 0, max(0, min(limit, CAP) - 1))
    return [json.loads(r) for r in raws]


def fleet_recent(client: redis.Redis, limit: int = FLEET_CAP) -> list[dict[str, Any]]:
    """The last decisions about any customer, newest first, each with its `customer_id`."""
    with redis_errors("reading the last plan-selection decisions"):
        raws = client.lrange(keys.PLAN_SELECTIONS, 0, max(0, min(limit, FLEET_CAP) - 1))
    return [json.loads(r) for r in raws]
