"""On-call's audit trail: who did what, to which customers, and why.

Every command that changes state by hand (customers link/unlink/paid, dlq replay/purge, reconcile,
the mapping apply, hand grants added, removed or ended: common/entitlements/manual_grants.py) records one entry
after it acted: on the timeline of each customer it touched
(common/customers/history.py: `customers history` and the read API show it next to the passes it caused), on
the fleet's own capped list `keys.AUDIT_LOG` (`rolesync audit`: actions that touch no one customer,
such as a full sweep, are found there), and as one structured log line. The operator is `--by`
(the OS user unless given; the key's label through the read API) and `--reason` is required: an
entry says why, not only what. In common/ so the worker (a grant that ended) and the API (a grant
made through it) record in the same trail; ops/audit.py is its on-call face.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from common import keys
from common.customers.history import History, entry
from common.errors import PermanentError
from common.infra.connections import redis_errors

log = structlog.get_logger(__name__)
BLANKS = " \t\n\r\f\v"  # what does not count as a reason; spelled out, as the API's schema says it
AUDIT_CAP = 1000  # the fleet list's length; each customer's timeline keeps its own cap
KIND = "oncall"
_SHOWN_CUSTOMERS = 50  # a bulk action's fleet entry names this many and counts the rest


class NoReasonError(PermanentError):
    reason = "no_reason"


def os_user() -> str:
    """The default operator: the OS account running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (a bare container)
        return "unknown"


@dataclass(frozen=True)
class Actor:
    by: str
    reason: str

    @classmethod
    def of(cls, by: str, reason: str | None) -> Actor:
        said = (reason or "").strip(BLANKS)
        if not said:
            raise NoReasonError("say why with --reason: it goes to the audit trail (the customers' timelines)")
        return cls((by or "").strip() or os_user(), said)


class Audit:
    def __init__(self, client: redis.Redis, history: History) -> None:
        self._redis = client
        self._history = history

    def record(self, action: str, actor: Actor, customers: Iterable[str | None] = (), **fields: Any) -> dict[str, Any]:
        """Note `action` on each customer's timeline and the fleet's list, and log it; return the entry."""
        ids = sorted({c for c in customers if c})
        item = entry(KIND, action=action, by=actor.by, reason=actor.reason, **fields)
        for customer_id in ids:
            self._history.add(customer_id, item)
        fleet = {**item, "customers": ids[:_SHOWN_CUSTOMERS], "customer_count": len(ids)}
        with redis_errors("writing the audit trail"), self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.AUDIT_LOG, json.dumps(fleet, sort_keys=True))
            pipe.ltrim(keys.AUDIT_LOG, 0, AUDIT_CAP - 1)
            pipe.execute()
        # At warning level: the CLI logs warnings and above only (cli/exits.py), and this line must reach stderr.
        log.warning("oncall_action_recorded", **{k: v for k, v in fleet.items() if k not in ("kind", "customers")})
        return item

    def recent(self, limit: int = AUDIT_CAP) -> list[dict[str, Any]]:
        with redis_errors("reading the audit trail"):
            raws = self._redis.lrange(keys.AUDIT_LOG, 0, max(0, min(limit, AUDIT_CAP) - 1))
        return [json.loads(r) for r in raws]
