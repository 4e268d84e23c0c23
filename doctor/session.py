"""What the checks share: settings, clients, and what earlier checks established for later ones.

A check that an earlier one's failure leaves without input (no Redis client, no Kinde token, no
plans) is skipped, naming what it waited on, instead of failing a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import redis

from common.plans.mapping import PlanMap
from common.settings import Settings
from doctor.access import KindeAccess


@dataclass
class Session:
    settings: Settings
    http: httpx.Client
    webhook_url: str = ""
    redis: redis.Redis | None = None
    plans: PlanMap | None = None
    kinde: KindeAccess | None = None
    missing_scopes: frozenset[str] = field(default_factory=frozenset)
    domain_ok: bool = False

    def lacks(self, scope: str) -> bool:
        return scope in self.missing_scopes
