"""Per-customer state for on-call (`rolesync customers show`): `keys.customer_state(customer)` hash."""

from __future__ import annotations

import json
import time

import redis
from redis.typing import EncodableT, FieldT

from common import keys
from common.customers.links import CustomerLink
from common.errors import ServiceError
from common.infra.connections import redis_errors
from worker.convergence.converge import Outcome


class CustomerStates:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def converged(self, link: CustomerLink, outcome: Outcome) -> None:
        fields: dict[FieldT, EncodableT] = {
            "converged_at": f"{time.time():.3f}",
            "desired_roles": json.dumps(sorted(outcome.desired)),
            "last_added": json.dumps(outcome.added),  # read by reconcile sweeps (worker/sweeps/reconcile.py) as drift
            "last_removed": json.dumps(outcome.removed),
            "kind": link.kind,
            "last_error": "",
            "last_error_reason": "",
        }
        with redis_errors("recording customer state"):
            self._redis.hset(keys.customer_state(link.customer_id), mapping=fields)

    def failed(self, customer_id: str, error: ServiceError) -> None:
        fields: dict[FieldT, EncodableT] = {
            "last_error": str(error)[:500],
            "last_error_reason": error.reason,
            "failed_at": f"{time.time():.3f}",
        }
        with redis_errors("recording customer state"):
            self._redis.hset(keys.customer_state(customer_id), mapping=fields)

    def get(self, customer_id: str) -> dict[str, str]:
        with redis_errors("reading customer state"):
            return {str(k): str(v) for k, v in self._redis.hgetall(keys.customer_state(customer_id)).items()}
